package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/reason"
)

// errorsSwagger is the part of the OpenAPI v2 document that says how each
// operation can fail.
type errorsSwagger struct {
	Info struct {
		Description string `json:"description"`
	} `json:"info"`
	Paths map[string]map[string]struct {
		OperationID string `json:"operationId"`
		Description string `json:"description"`
		Responses   map[string]struct {
			Description string `json:"description"`
		} `json:"responses"`
	} `json:"paths"`
}

// undocumentedReasons are the reasons no operation of the document answers
// with: they are for paths and methods the document has no operation for,
// and for a caller who left before the answer.
var undocumentedReasons = []reason.Reason{reason.NotFound, reason.MethodNotAllowed, reason.Canceled}

// httpStatusOf is the HTTP status a reason is answered with: the one
// grpc-gateway gives its code, but for the body limit, which the gateway
// answers with 413 itself (limitBody).
func httpStatusOf(r reason.Reason) int {
	if r == reason.RequestTooLarge {
		return http.StatusRequestEntityTooLarge
	}
	return runtime.HTTPStatusFromCode(r.Code())
}

// snakeWord matches what looks like a reason or a code name.
var snakeWord = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\bINTERNAL\b`)

// reasonsIn returns the ErrorReason names in text, and the words that look
// like one but are neither a reason nor a gRPC code.
func reasonsIn(text string) (reasons []reason.Reason, unknown []string) {
	for _, w := range snakeWord.FindAllString(text, -1) {
		if v, ok := accessv1.ErrorReason_value[w]; ok && v != 0 {
			reasons = append(reasons, reason.Reason(v))
		} else if _, ok := rpccode.Code_value[w]; !ok {
			unknown = append(unknown, w)
		}
	}
	return reasons, unknown
}

// everyRPCReasons reads, in the header comment of access.proto, the
// reasons every RPC can return besides its own.
func everyRPCReasons(t *testing.T) []reason.Reason {
	t.Helper()
	data, err := os.ReadFile("../../proto/radkit/access/v1/access.proto")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "\n//", "")
	_, sentence, ok := strings.Cut(text, "every RPC can also return")
	if !ok {
		t.Fatal(`access.proto's header no longer says which reasons "every RPC can also return"`)
	}
	sentence, _, _ = strings.Cut(sentence, ".")
	reasons, unknown := reasonsIn(sentence)
	if len(reasons) == 0 || len(unknown) > 0 {
		t.Fatalf("access.proto: every RPC can also return %v; not reasons: %v", reasons, unknown)
	}
	return reasons
}

// TestOpenAPIErrorResponsesNameTheirReasons checks the error responses of
// the embedded OpenAPI document against the ErrorReason enum and the
// catalog: the document's description says once what an error holds; each
// error response names reasons that exist, each under the HTTP status it
// is answered with; each operation's responses name every reason its RPC
// comment lists and every reason access.proto says every RPC can return;
// and every reason is named somewhere, so that a reason added to the enum
// without being documented fails here.
func TestOpenAPIErrorResponsesNameTheirReasons(t *testing.T) {
	var doc errorsSwagger
	if err := json.Unmarshal(OpenAPIDocument(), &doc); err != nil {
		t.Fatalf("the embedded document is not JSON: %v", err)
	}
	for _, s := range []string{"type.googleapis.com/google.rpc.ErrorInfo", "type.googleapis.com/google.rpc.RetryInfo", "type.googleapis.com/google.rpc.BadRequest", "radkit.access.v1.ErrorReason", reason.Domain} {
		if !strings.Contains(doc.Info.Description, s) {
			t.Errorf("the document's description does not name %s: %q", s, doc.Info.Description)
		}
	}
	every := everyRPCReasons(t)
	named := map[reason.Reason]bool{}
	operations := 0
	for path, methods := range doc.Paths {
		for method, op := range methods {
			operations++
			where := method + " " + path
			documented := map[reason.Reason]bool{}
			for code, resp := range op.Responses {
				if code == "200" || code == "default" {
					continue
				}
				reasons, unknown := reasonsIn(resp.Description)
				if len(unknown) > 0 {
					t.Errorf("%s %s: %v are not ErrorReason values: %q", where, code, unknown, resp.Description)
				}
				if len(reasons) == 0 && !strings.Contains(resp.Description, "no ErrorInfo") {
					t.Errorf("%s %s names no reason: %q", where, code, resp.Description)
				}
				for _, r := range reasons {
					documented[r], named[r] = true, true
					if want := httpStatusOf(r); code != strconv.Itoa(want) {
						t.Errorf("%s: %s is under %s, but is answered with %d", where, r, code, want)
					}
				}
			}
			_, errorsPart, ok := strings.Cut(op.Description, "Errors:")
			if !ok {
				t.Errorf("%s (%s): the RPC comment has no \"Errors:\" list", where, op.OperationID)
			}
			errorsPart, _, _ = strings.Cut(errorsPart, "\n\n")
			listed, unknown := reasonsIn(errorsPart)
			if len(unknown) > 0 {
				t.Errorf("%s: the RPC comment lists %v, which are not ErrorReason values", where, unknown)
			}
			for _, r := range slices.Concat(listed, every) {
				if !documented[r] {
					t.Errorf("%s: %s is not named by any of its error responses", where, r)
				}
			}
		}
	}
	if operations != 4 {
		t.Errorf("the document has %d operations, want 4", operations)
	}
	for n := range accessv1.ErrorReason_name {
		r := reason.Reason(n)
		if n == 0 || slices.Contains(undocumentedReasons, r) {
			continue
		}
		if !named[r] {
			t.Errorf("%s is named by no error response of the document", r)
		}
	}
}
