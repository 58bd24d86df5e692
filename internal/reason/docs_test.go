package reason

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// TestDocsErrorTable checks the error table of docs/errors.md, the page
// people read, against the enum and the catalog: each row's reason is an
// ErrorReason value, its gRPC code the catalog's, its HTTP status (where
// the row gives a number) the one error_reason.proto names or grpc-gateway
// gives the code, and its RetryInfo cell filled exactly when the reason is
// retryable; and every reason has a row.
func TestDocsErrorTable(t *testing.T) {
	data, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	comments := enumComments(t, "../../proto/radkit/access/v1/error_reason.proto")
	namedHTTP := regexp.MustCompile(`^[A-Z_]+(?: \(HTTP (\d+)\)|, HTTP (\d+))`)
	backticked := regexp.MustCompile("`([A-Z_]+)`")
	_, table, ok := strings.Cut(string(data), "| Upstream outcome | gRPC code | HTTP | Reason | RetryInfo |")
	if !ok {
		t.Fatal("docs/errors.md has no error table (its header row changed?)")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	rows := map[Reason]int{}
	for line := range strings.Lines(table) {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 5 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		outcome, code, httpStatus, reasonCell, retry := cells[0], cells[1], cells[2], cells[3], cells[4]
		if reasonCell == "" || strings.HasPrefix(reasonCell, "---") {
			continue // the separator, and the rows that head a group
		}
		m := backticked.FindStringSubmatch(reasonCell)
		if m == nil {
			t.Errorf("row %q: no reason in %q", outcome, reasonCell)
			continue
		}
		v, ok := accessv1.ErrorReason_value[m[1]]
		if !ok || v == 0 {
			t.Errorf("row %q: %s is not an ErrorReason value", outcome, m[1])
			continue
		}
		r := Reason(v)
		rows[r]++
		if want := "`" + rpccode.Code(r.Code()).String() + "`"; code != want {
			t.Errorf("%s (row %q): code %s, the catalog's is %s", r, outcome, code, want)
		}
		if n, err := strconv.Atoi(httpStatus); err == nil {
			want := runtime.HTTPStatusFromCode(r.Code())
			if m := namedHTTP.FindStringSubmatch(comments[r.String()]); m != nil {
				want, _ = strconv.Atoi(m[1] + m[2])
			}
			if n != want {
				t.Errorf("%s (row %q): HTTP %d, want %d", r, outcome, n, want)
			}
		}
		if (retry != "") != r.Retryable() {
			t.Errorf("%s (row %q): RetryInfo %q, but the catalog says retryable: %v", r, outcome, retry, r.Retryable())
		}
	}
	for n, name := range accessv1.ErrorReason_name {
		if n != 0 && rows[Reason(n)] == 0 {
			t.Errorf("%s has no row in the error table of docs/errors.md", name)
		}
	}
}
