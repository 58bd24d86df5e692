package facade_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/requestid"
	"github.com/radkit/radkit-access-facade/internal/testkit"
	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// upstreamIDs is an emulator that records the X-Request-ID of every OTP
// request it is sent.
type upstreamIDs struct {
	mu  sync.Mutex
	ids []string
}

func (u *upstreamIDs) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.ids...)
}

// TestRequestID checks, over both doors, that a call's request ID is the
// caller's when well formed and a generated one otherwise, and that the
// same ID is in the answer, the call's log line, the audit record and the
// upstream request.
func TestRequestID(t *testing.T) {
	const clientID, clientSecret = "reqid-client", "reqid-secret"
	emu, err := emulator.New(emulator.Config{Seed: testSeed(clientID, clientSecret, "reqid-api-token")})
	if err != nil {
		t.Fatalf("emulator.New: %v", err)
	}
	rec := &upstreamIDs{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/otp/certificate") {
			rec.mu.Lock()
			rec.ids = append(rec.ids, r.Header.Get("X-Request-ID"))
			rec.mu.Unlock()
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	h := startFacade(t, facade.Config{UpstreamURL: up.URL, ClientID: clientID, ClientSecret: clientSecret})
	h.waitServing(t)

	tests := []struct {
		name string
		via  string
		sent string // "" sends none
		keep bool   // the answer must carry sent back
	}{
		{"grpc given", "grpc", "caller-id.1:a_b-c", true},
		{"grpc absent", "grpc", "", false},
		{"grpc malformed", "grpc", "has spaces; and=more", false},
		{"grpc too long", "grpc", strings.Repeat("x", requestid.MaxLen+1), false},
		{"http given", "http", "caller-id.2", true},
		{"http absent", "http", "", false},
		{"http malformed", "http", "bad/id", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.seen())
			var got string
			switch tt.via {
			case "grpc":
				ctx := callCtx(t)
				if tt.sent != "" {
					ctx = metadata.AppendToOutgoingContext(ctx, requestid.Key, tt.sent)
				}
				var header metadata.MD
				if _, err := h.client.GenerateOTP(ctx, otpRequest(), grpc.Header(&header)); err != nil {
					t.Fatalf("GenerateOTP: %v", err)
				}
				if v := header.Get(requestid.Key); len(v) == 1 {
					got = v[0]
				} else {
					t.Fatalf("header metadata %s = %q, want one value", requestid.Key, v)
				}
			case "http":
				body, _ := json.Marshal(map[string]string{"owner": "owner@example.com", "endpoint_id": "router-1"})
				req, err := http.NewRequestWithContext(callCtx(t), http.MethodPost, h.base+"/v1/otp", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if tt.sent != "" {
					req.Header.Set("X-Request-ID", tt.sent)
				}
				resp, err := h.http.Do(req)
				if err != nil {
					t.Fatalf("POST /v1/otp: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("POST /v1/otp: %d", resp.StatusCode)
				}
				if v := resp.Header.Values("X-Request-ID"); len(v) == 1 {
					got = v[0]
				} else {
					t.Fatalf("X-Request-ID headers %q, want one", v)
				}
				if v := resp.Header.Get("Grpc-Metadata-X-Request-Id"); v != "" {
					t.Errorf("the ID is answered twice, also as Grpc-Metadata-X-Request-Id: %q", v)
				}
			}
			if tt.keep && got != tt.sent {
				t.Errorf("answered request ID %q, want the caller's %q", got, tt.sent)
			}
			if !tt.keep && (got == tt.sent || !requestid.Valid(got)) {
				t.Errorf("answered request ID %q, want a generated one", got)
			}
			if ids := rec.seen(); len(ids) != before+1 || ids[before] != got {
				t.Errorf("upstream saw X-Request-ID %q (after %d), want one request with %q", ids, before, got)
			}
			var logged, audited bool
			testkit.Eventually(t, 5*time.Second, "the call's log line and audit record", func() bool {
				logged, audited = false, false
				for _, m := range testkit.JSONLines(h.logs.String()) {
					if m["x_request_id"] != got {
						continue
					}
					switch m["msg"] {
					case "finished call":
						logged = m["grpc.method"] == "GenerateOTP" && m["protocol"] == tt.via
					case "audit":
						audited = m["rpc"] == "GenerateOTP"
					}
				}
				return logged && audited
			})
		})
	}
}

// TestRequestIDOnEveryAnswer checks that error answers carry the request
// ID too: a gRPC error's header metadata, and over HTTP a call's error, a
// routing error and a probe.
func TestRequestIDOnEveryAnswer(t *testing.T) {
	h, _ := startEmulatorFacade(t)

	var header metadata.MD
	ctx := metadata.AppendToOutgoingContext(callCtx(t), requestid.Key, "err-grpc-1")
	if _, err := h.client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "no-such-service"}, grpc.Header(&header)); err == nil {
		t.Fatal("GetServiceStatus of an unknown service succeeded")
	}
	if v := header.Get(requestid.Key); len(v) != 1 || v[0] != "err-grpc-1" {
		t.Errorf("gRPC error: header metadata %s = %q, want [err-grpc-1]", requestid.Key, v)
	}

	for _, path := range []string{httpStatusPath("no-such-service"), "/no/such/path", "/healthz"} {
		req, err := http.NewRequestWithContext(callCtx(t), http.MethodGet, h.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-ID", "err-http-1")
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-ID"); got != "err-http-1" {
			t.Errorf("GET %s (%d): X-Request-ID %q, want err-http-1", path, resp.StatusCode, got)
		}
	}
}

// TestRequestIDOnStreams checks that a streaming call (a health watch)
// answers the request ID in its header metadata too.
func TestRequestIDOnStreams(t *testing.T) {
	h, _ := startEmulatorFacade(t)
	ctx := metadata.AppendToOutgoingContext(callCtx(t), requestid.Key, "stream-1")
	stream, err := h.health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	header, err := stream.Header()
	if err != nil {
		t.Fatalf("Watch header: %v", err)
	}
	if v := header.Get(requestid.Key); len(v) != 1 || v[0] != "stream-1" {
		t.Errorf("header metadata %s = %q, want [stream-1]", requestid.Key, v)
	}
}
