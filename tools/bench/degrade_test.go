package main

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

func TestClassify(t *testing.T) {
	withDetails := func(code codes.Code, reason string, retry bool) error {
		st := status.New(code, "x")
		info := &errdetails.ErrorInfo{Reason: reason, Domain: "radkit-access-facade"}
		var err error
		if retry {
			st, err = st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(1e9)})
		} else {
			st, err = st.WithDetails(info)
		}
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	tests := []struct {
		name string
		err  error
		want outcome
	}{
		{"ok", nil, outcomeOK},
		{"throttled", withDetails(codes.Unavailable, accessv1.ErrorReason_UPSTREAM_THROTTLED.String(), true), outcomeShed},
		{"circuit open", withDetails(codes.Unavailable, accessv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(), true), outcomeShed},
		{"upstream 503", withDetails(codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), true), outcomeUnavailable},
		{"unavailable without RetryInfo", withDetails(codes.Unavailable, accessv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), false), outcomeOther},
		{"deadline", status.Error(codes.DeadlineExceeded, "late"), outcomeDeadline},
		{"internal", withDetails(codes.Internal, accessv1.ErrorReason_UPSTREAM_ERROR.String(), false), outcomeOther},
		{"not a status", errors.New("boom"), outcomeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.err); got != tt.want {
				t.Errorf("classify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseDegradeFlags(t *testing.T) {
	o, err := parseFlags([]string{"-degrade", "-degrade-rates", "0, 0.5,1", "-degrade-duration", "3s"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	if !o.degrade || !slices.Equal(o.degradeRates, []float64{0, 0.5, 1}) || o.degradeDuration.Seconds() != 3 || o.degradeInflight != 32 {
		t.Errorf("options = %+v", o)
	}
	for _, bad := range [][]string{{"-degrade-rates", "0,1.5"}, {"-degrade-rates", "x"}, {"-degrade-inflight", "1"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestTallyLatencyOfOKCallsOnly(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	// Ten successes of 10-100 ms among thirty fast failures of every kind:
	// the percentiles must be the successes' alone.
	var calls []call
	for i := 1; i <= 10; i++ {
		calls = append(calls, call{lat: ms(10 * i), outcome: outcomeOK})
	}
	for range 10 {
		calls = append(calls,
			call{lat: ms(1), outcome: outcomeShed},
			call{lat: ms(2), outcome: outcomeUnavailable},
			call{lat: ms(500), outcome: outcomeDeadline},
		)
	}
	calls = append(calls, call{lat: ms(200), outcome: outcomeShed}, call{lat: ms(3), outcome: outcomeOther})
	c := tally(calls)
	if c.P50 != ms(50) || c.P99 != ms(100) {
		t.Errorf("p50 %v p99 %v, want 50ms and 100ms (the successes' latencies)", c.P50, c.P99)
	}
	want := DegradeCell{Calls: 42, OK: 10, Shed: 11, ShedFast: 10, Unavailable: 10, Deadline: 10, Other: 1, P50: ms(50), P99: ms(100), SuccessRatio: 10.0 / 42}
	if c != want {
		t.Errorf("tally = %+v\nwant    %+v", c, want)
	}
	if c := tally([]call{{lat: ms(1), outcome: outcomeShed}}); c.P50 != 0 || c.P99 != 0 || c.SuccessRatio != 0 {
		t.Errorf("no success: p50 %v p99 %v ratio %v, want zeros", c.P50, c.P99, c.SuccessRatio)
	}
}

func TestPrintDegradeReportShowsNoLatencyWithoutSuccess(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	answered, refused := tally([]call{{lat: ms(7), outcome: outcomeOK}}), tally([]call{{lat: ms(3), outcome: outcomeShed}})
	answered.RPC, refused.RPC = "GenerateOTP", "GenerateOTP"
	var b strings.Builder
	printDegradeReport(&b, &DegradeReport{Cells: []DegradeCell{answered, refused}})
	var rows []string
	for line := range strings.Lines(b.String()) {
		if f := strings.Fields(line); len(f) > 6 && f[0] == "GenerateOTP" {
			rows = append(rows, f[5]+" "+f[6])
		}
	}
	if want := []string{"7.00ms 7.00ms", "- -"}; !slices.Equal(rows, want) {
		t.Errorf("OK p50 and p99 columns %q, want %q:\n%s", rows, want, b.String())
	}
}
