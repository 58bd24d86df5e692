package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// docsPageTimeout bounds docs.mjs: Chromium's start, the page's load and
// two calls, on a loaded machine. A run takes a few seconds.
const docsPageTimeout = 90 * time.Second

// docsPage is what e2e/node/docs.mjs saw on the page.
type docsPage struct {
	Operations []struct {
		ID     string `json:"id"`
		Method string `json:"method"`
		Path   string `json:"path"`
	} `json:"operations"`
	ResponseCodes map[string][]string `json:"responseCodes"`
	ConsoleErrors []struct {
		Text string `json:"text"`
		URL  string `json:"url"`
	} `json:"consoleErrors"`
	PageErrors       []string `json:"pageErrors"`
	CSPViolations    []string `json:"cspViolations"`
	Requests         []string `json:"requests"`
	APIAuthorization []string `json:"apiAuthorization"`
	OTP              struct {
		Status string `json:"status"`
		Body   string `json:"body"`
	} `json:"otp"`
	NotFound struct {
		Status string `json:"status"`
		Body   string `json:"body"`
	} `json:"notFound"`
	// Error is the step of docs.mjs that failed, if one did.
	Error string `json:"error"`
}

// TestAPIDocsPageInBrowser opens the facade binary's API reference page
// (GET /docs/) in headless Chromium and uses it as a person would: the four
// operations and their error responses are shown; with the caller key
// typed under "Authorize", GenerateOTP shows an OTP and a status call for
// an unknown service shows the UPSTREAM_NOT_FOUND reason. The facade
// requires caller keys, so the calls succeed only with the key typed. It
// fails on any console error (but the one line
// Chromium logs for the deliberate 404), on any script error or
// Content-Security-Policy violation, and on any request to a host other
// than the facade's. The screenshot stays in the test's temporary folder.
func TestAPIDocsPageInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		testkit.Skip(t, "e2e: the API reference page test needs Chromium (Debian package chromium): "+err.Error())
	}
	node := NodeClient(t)
	facadeBinary(t) // built before any clock starts

	const key = "docs-page-e2e-caller-key"
	sum := sha256.Sum256([]byte(key))
	dir := t.TempDir()
	keys := filepath.Join(dir, "caller-keys")
	if err := os.WriteFile(keys, []byte("docs-page "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := startBinary(t,
		[]string{"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--caller-keys-file", keys},
		binaryEnv())
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + p.httpAddr
	const unknownService = "no-such-service"
	screenshot := filepath.Join(dir, "docs.png")

	out, err := node.Script(testkit.Context(t, docsPageTimeout), "docs.mjs",
		"--base", base,
		// The address a person follows from a link: the facade refuses
		// any query string on /docs/ (internal/gateway tests it),
		// and the page reads none (queryConfigEnabled: false).
		"--path", "/docs/#/AccessService",
		"--key", key,
		"--chromium", chromium,
		"--profile", filepath.Join(dir, "chromium-profile"),
		"--screenshot", screenshot,
		"--otp-body", `{"owner": "user@example.com", "endpoint_id": "endpoint-identifier", "description": "from the API reference page"}`,
		"--service-id", unknownService,
	)
	if err != nil {
		t.Fatal(err)
	}
	var page docsPage
	if err := json.Unmarshal(out, &page); err != nil {
		t.Fatalf("docs.mjs printed %q: %v", out, err)
	}

	if page.Error != "" {
		t.Errorf("driving the page: %s", page.Error)
	}

	var ops []string
	for _, op := range page.Operations {
		ops = append(ops, op.Method+" "+op.Path)
	}
	slices.Sort(ops)
	wantOps := []string{
		"GET /v1/services/{service_id}/status",
		"GET /v1/services/{service_id}/status:watch",
		"POST /v1/otp",
		"POST /v1/tokens:revoke",
	}
	if !slices.Equal(ops, wantOps) {
		t.Errorf("operations shown: %q, want %q", ops, wantOps)
	}
	for op, codes := range map[string][]string{
		"AccessService_GenerateOTP":      {"200", "400", "401", "429", "503"},
		"AccessService_GetServiceStatus": {"200", "401", "404", "429", "503"},
	} {
		for _, code := range codes {
			if !slices.Contains(page.ResponseCodes[op], code) {
				t.Errorf("%s: documented responses %q lack %s", op, page.ResponseCodes[op], code)
			}
		}
	}

	if len(page.APIAuthorization) != 2 {
		t.Errorf("the page made %d API calls, want 2", len(page.APIAuthorization))
	}
	for _, auth := range page.APIAuthorization {
		if auth != "Bearer "+key {
			t.Errorf("an API call from the page carried Authorization %q, want the key typed", auth)
		}
	}

	var otp struct {
		OTP string `json:"otp"`
	}
	if page.OTP.Status != "200" || json.Unmarshal([]byte(page.OTP.Body), &otp) != nil || otp.OTP == "" {
		t.Errorf("GenerateOTP on the page: %s %q, want 200 with an OTP", page.OTP.Status, page.OTP.Body)
	}
	var notFound struct {
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	}
	if page.NotFound.Status != "404" || json.Unmarshal([]byte(page.NotFound.Body), &notFound) != nil ||
		len(notFound.Details) == 0 || notFound.Details[0].Reason != "UPSTREAM_NOT_FOUND" {
		t.Errorf("GetServiceStatus of an unknown service on the page: %s %q, want 404 with reason UPSTREAM_NOT_FOUND",
			page.NotFound.Status, page.NotFound.Body)
	}

	// Chromium logs a failed resource as a console error: the 404 the test
	// asked for is the one expected.
	notFoundURL := base + "/v1/services/" + unknownService + "/status"
	for _, e := range page.ConsoleErrors {
		if e.URL == notFoundURL && strings.Contains(e.Text, "404") {
			continue
		}
		t.Errorf("console error: %s (%s)", e.Text, e.URL)
	}
	for _, e := range page.PageErrors {
		t.Errorf("script error on the page: %s", e)
	}
	for _, v := range page.CSPViolations {
		t.Errorf("Content-Security-Policy violation: %s", v)
	}
	loadedOwnDocument := false
	for _, raw := range page.Requests {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			t.Errorf("request to an unparsable URL %q: %v", raw, err)
		case u.Scheme == "data":
			// The stylesheet's icons: no request leaves the browser.
		case u.Scheme != "http" || u.Host != p.httpAddr:
			t.Errorf("request to another host than the facade's: %s", raw)
		case u.Path == "/openapi.v3.json":
			loadedOwnDocument = true
		}
	}
	if !loadedOwnDocument {
		t.Errorf("the page never loaded %s/openapi.v3.json; requests: %q", base, page.Requests)
	}

	if fi, err := os.Stat(screenshot); err != nil || fi.Size() < 10<<10 {
		t.Errorf("screenshot %s: %v (size %d), want a PNG of the page", screenshot, err, sizeOf(fi))
	}
	t.Logf("screenshot of the page: %s", screenshot)
}

// TestAPIDocsTurnedOff checks that --api-docs=false removes the page from
// the binary's HTTP listener, and only the page.
func TestAPIDocsTurnedOff(t *testing.T) {
	p, err := startBinary(t,
		[]string{"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-docs=false"},
		binaryEnv())
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{
		Timeout:       time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	for path, want := range map[string]int{
		"/docs/":                             http.StatusNotFound,
		"/docs":                              http.StatusNotFound,
		"/docs/swagger-ui-bundle.js":         http.StatusNotFound,
		"/openapi.v3.json":                   http.StatusOK,
		"/v1/services/1ryq-e8n8-5g5n/status": http.StatusOK,
	} {
		res, err := client.Get("http://" + p.httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_ = res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, res.StatusCode, want)
		}
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.Size()
}
