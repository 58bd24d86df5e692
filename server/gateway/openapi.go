package gateway

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI v2 document that buf generates from the
// protos (see buf.gen.yaml), embedded so that the binary serves exactly the
// contract it was built from.
//
//go:embed openapiv2/access.swagger.json
var openAPIDocument []byte

// OpenAPIDocument returns the generated OpenAPI v2 document of the API.
func OpenAPIDocument() []byte {
	return append([]byte(nil), openAPIDocument...)
}

// serveOpenAPI serves the embedded OpenAPI document.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDocument)
}
