package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The API reference page: Swagger UI (swagger-ui-dist, pinned in
// tools/apidocs and vendored by `go -C tools run ./apidocs`) showing
// /openapi.v3.json, with the page's own index.html and init.js. Files named
// name.gz are stored gzip-compressed and served as name.
//
//go:generate go -C ../../tools run ./apidocs
//go:embed apidocs
var apiDocsFiles embed.FS

// APIDocsCSP is the Content-Security-Policy of every /docs/ answer: the
// page may load scripts, styles and images from the facade's own origin
// only, and call nothing but the facade. The one widening, data: images,
// is for the icons that Swagger UI's stylesheet carries inline as data:
// URLs; an image cannot run script. No inline script or style, no eval, no
// frames, no other origin.
const APIDocsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docFile is one file of the page, ready to serve.
type docFile struct {
	data        []byte // as stored: gzip-compressed when gzipped
	gzipped     bool
	contentType string
	etag        string // of data
}

// docContentType is the Content-Type of a file of the page, decided here
// rather than by the host's MIME tables.
func docContentType(name string) (string, bool) {
	switch {
	case strings.HasSuffix(name, ".html"):
		return "text/html; charset=utf-8", true
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8", true
	case strings.HasSuffix(name, ".css"):
		return "text/css; charset=utf-8", true
	case strings.HasSuffix(name, ".png"):
		return "image/png", true
	case strings.HasSuffix(name, ".txt"), !strings.Contains(name, "."): // LICENSE, NOTICE
		return "text/plain; charset=utf-8", true
	}
	return "", false
}

// registerAPIDocs serves the page on mux: GET /docs/ is index.html, GET
// /docs/<name> each file beside it, GET /docs a redirect to /docs/, each
// through wrap (the gateway's refusal of query strings: the page reads
// none, and a ?url= can never choose its document). Any other path under
// /docs/ is left to the mux's other routes, which answer it as every
// unknown path (404). The page is static and public, like the OpenAPI
// document it shows; the calls a person makes from it are ordinary API
// calls, with the caller key they typed, authenticated as any other.
func registerAPIDocs(mux *http.ServeMux, wrap func(http.Handler) http.Handler) error {
	files, err := loadAPIDocs()
	if err != nil {
		return err
	}
	mux.Handle("GET /docs", wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setDocsHeaders(w.Header())
		// Relative, so that a proxy's path prefix is kept.
		w.Header().Set("Location", "docs/")
		w.WriteHeader(http.StatusMovedPermanently)
	})))
	for name, f := range files {
		pattern := "GET /docs/" + name
		if name == "index.html" {
			pattern = "GET /docs/{$}"
		}
		mux.Handle(pattern, wrap(f))
	}
	return nil
}

// loadAPIDocs reads the embedded page, keyed by the name each file is
// served under.
func loadAPIDocs() (map[string]*docFile, error) {
	dir, err := fs.Sub(apiDocsFiles, "apidocs")
	if err != nil {
		return nil, fmt.Errorf("gateway: API reference page: %w", err)
	}
	entries, err := fs.ReadDir(dir, ".")
	if err != nil {
		return nil, fmt.Errorf("gateway: API reference page: %w", err)
	}
	files := map[string]*docFile{}
	for _, e := range entries {
		data, err := fs.ReadFile(dir, e.Name())
		if err != nil {
			return nil, fmt.Errorf("gateway: API reference page: %w", err)
		}
		name, gzipped := strings.CutSuffix(e.Name(), ".gz")
		ct, ok := docContentType(name)
		if !ok {
			return nil, fmt.Errorf("gateway: API reference page: no content type for %s", name)
		}
		sum := sha256.Sum256(data)
		files[name] = &docFile{
			data:        data,
			gzipped:     gzipped,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
	}
	if files["index.html"] == nil {
		return nil, fmt.Errorf("gateway: API reference page: no index.html")
	}
	return files, nil
}

// setDocsHeaders sets the headers of every answer under /docs.
func setDocsHeaders(h http.Header) {
	h.Set("Content-Security-Policy", APIDocsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// ServeHTTP serves the file. A compressed one goes out as it is stored,
// with Content-Encoding: gzip, to every client that accepts gzip (every
// browser); to one that does not, it is decompressed on the way.
func (f *docFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	setDocsHeaders(h)
	h.Set("Content-Type", f.contentType)
	// Revalidated on each load (a 304 while the ETag holds), so that a
	// facade upgrade is never shown with a stale script.
	h.Set("Cache-Control", "no-cache")
	if f.gzipped {
		h.Add("Vary", "Accept-Encoding")
		if !acceptsGzip(r.Header.Values("Accept-Encoding")) {
			f.serveDecompressed(w, r)
			return
		}
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

func (f *docFile) serveDecompressed(w http.ResponseWriter, r *http.Request) {
	zr, err := gzip.NewReader(bytes.NewReader(f.data))
	if err != nil { // the embedded file is checked by tests and CI
		http.Error(w, "corrupt embedded file", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, zr)
}

// acceptsGzip reports whether Accept-Encoding values accept gzip
// (RFC 9110, section 12.5.3): named with a q-value above zero, or not named
// and covered by "*" with a q-value above zero.
func acceptsGzip(values []string) bool {
	gzipQ, anyQ := -1.0, -1.0
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			q := 1.0
			if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				parsed, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					continue
				}
				q = parsed
			}
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip", "x-gzip":
				gzipQ = q
			case "*":
				anyQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return anyQ > 0
}
