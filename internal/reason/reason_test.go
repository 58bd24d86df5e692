package reason

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// TestCatalogCoversTheEnum: the catalog and the API's ErrorReason enum
// agree both ways. Every value but ERROR_REASON_UNSPECIFIED has a row of
// its own, with a code and a message, and its Go name's string is the
// value's name; and no row exists for a number the enum does not name. (A
// Reason is an ErrorReason, and each constant is converted from a
// generated one, so the compiler keeps the names in step.)
func TestCatalogCoversTheEnum(t *testing.T) {
	for n, name := range accessv1.ErrorReason_name {
		r := Reason(n)
		_, ok := r.row()
		if r == 0 {
			if ok {
				t.Errorf("%s has a catalog row: it is never sent", name)
			}
			continue
		}
		if !ok {
			t.Errorf("%s has no catalog row: it would go out as INTERNAL", name)
		}
		if r.String() != name || r.Message() == "" || r.Code() == codes.OK {
			t.Errorf("%s: string %q, code %v, message %q", name, r, r.Code(), r.Message())
		}
	}
	for n := range int32(1 << 10) {
		if _, ok := Reason(n).row(); ok {
			if _, named := accessv1.ErrorReason_name[n]; !named {
				t.Errorf("catalog row for %d, which ErrorReason does not name", n)
			}
		}
	}
}

// TestEnumCommentsMatchTheCatalog reads error_reason.proto, where callers
// read what each reason means: each value's comment starts with the gRPC
// code of its catalog row, names the HTTP status grpc-gateway gives that
// code when it says "(HTTP n)", and says "Carries RetryInfo" exactly when
// the row is retryable.
func TestEnumCommentsMatchTheCatalog(t *testing.T) {
	comments := enumComments(t, "../../proto/radkit/access/v1/error_reason.proto")
	if len(comments) != len(accessv1.ErrorReason_name) {
		t.Errorf("error_reason.proto has %d commented values, the generated enum %d", len(comments), len(accessv1.ErrorReason_name))
	}
	httpStatus := regexp.MustCompile(`^[A-Z_]+ \(HTTP (\d+)\)`)
	for name, comment := range comments {
		r := Reason(accessv1.ErrorReason_value[name])
		if r == 0 {
			continue
		}
		code := rpccode.Code(r.Code()).String()
		if got, _, _ := strings.Cut(comment, " "); strings.TrimRight(got, ".,") != code {
			t.Errorf("%s: the comment starts with %q, want the code %s", name, got, code)
		}
		if m := httpStatus.FindStringSubmatch(comment); m != nil {
			if want := strconv.Itoa(runtime.HTTPStatusFromCode(r.Code())); m[1] != want {
				t.Errorf("%s: the comment says HTTP %s, grpc-gateway gives %s HTTP %s", name, m[1], code, want)
			}
		}
		if says := strings.Contains(comment, "Carries RetryInfo"); says != r.Retryable() {
			t.Errorf("%s: the comment says RetryInfo: %v; the catalog: %v", name, says, r.Retryable())
		}
	}
}

// enumComments returns the leading comment of each enum value in the
// proto file at path, as one line of text, by value name.
func enumComments(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	value := regexp.MustCompile(`^\s*([A-Z][A-Z0-9_]*) = \d+;`)
	comments := map[string]string{}
	var comment []string
	for line := range strings.Lines(string(data)) {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "//"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(trimmed, "//")))
		case value.MatchString(line):
			comments[value.FindStringSubmatch(line)[1]] = strings.Join(comment, " ")
			comment = nil
		default:
			comment = nil
		}
	}
	return comments
}

func TestNew(t *testing.T) {
	tests := []struct {
		name      string
		r         Reason
		msg       string
		opts      []Option
		wantMsg   string
		wantRetry time.Duration // -1: no RetryInfo
		wantBR    bool
	}{
		{"catalog message", UpstreamNotFound, "", nil, UpstreamNotFound.Message(), -1, false},
		{"own message", CallerUnauthenticated, "no key", nil, "no key", -1, false},
		{"retry", CallerRateLimited, "", []Option{WithRetryAfter(1500 * time.Millisecond), WithMetadata(map[string]string{"limit": "5"})}, CallerRateLimited.Message(), 1500 * time.Millisecond, false},
		{"negative retry", TooManyRequestIDs, "", []Option{WithRetryAfter(-time.Second)}, TooManyRequestIDs.Message(), 0, false},
		{"extra detail", InvalidRequest, "bad", []Option{WithDetails(&errdetails.BadRequest{})}, "bad", -1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := New(tc.r, tc.msg, tc.opts...)
			if st.Code() != tc.r.Code() || st.Message() != tc.wantMsg {
				t.Errorf("status %v %q, want %v %q", st.Code(), st.Message(), tc.r.Code(), tc.wantMsg)
			}
			var info *errdetails.ErrorInfo
			retry := time.Duration(-1)
			br := false
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.RetryInfo:
					retry = d.GetRetryDelay().AsDuration()
				case *errdetails.BadRequest:
					br = true
				}
			}
			if info == nil || info.GetReason() != tc.r.String() || info.GetDomain() != Domain {
				t.Errorf("ErrorInfo = %v, want reason %s in %s", info, tc.r, Domain)
			}
			if retry != tc.wantRetry || br != tc.wantBR {
				t.Errorf("RetryInfo %v BadRequest %v, want %v %v", retry, br, tc.wantRetry, tc.wantBR)
			}
		})
	}
}

// TestUnspecifiedGoesOutAsInternal: ERROR_REASON_UNSPECIFIED is never
// sent, even when code passes the zero Reason.
func TestUnspecifiedGoesOutAsInternal(t *testing.T) {
	st := New(Reason(accessv1.ErrorReason_ERROR_REASON_UNSPECIFIED), "")
	if st.Code() != codes.Internal || st.Message() != Internal.Message() {
		t.Errorf("status %v %q, want INTERNAL %q", st.Code(), st.Message(), Internal.Message())
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() != "INTERNAL" {
			t.Errorf("ErrorInfo reason %q, want INTERNAL", info.GetReason())
		}
	}
}
