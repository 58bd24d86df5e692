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

// openAPIv3Document is the OpenAPI 3 document converted from the v2 one
// by tools/openapiv3, so that both say the same.
//
//go:embed openapiv3/access.openapi.json
var openAPIv3Document []byte

// OpenAPIv3Document returns the OpenAPI 3 document of the API.
func OpenAPIv3Document() []byte {
	return append([]byte(nil), openAPIv3Document...)
}

// OpenAPIDocument returns the generated OpenAPI v2 document of the API.
func OpenAPIDocument() []byte {
	return append([]byte(nil), openAPIDocument...)
}

// serveOpenAPI serves the embedded OpenAPI v2 document.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	serveDocument(w, openAPIDocument)
}

// serveOpenAPIv3 serves the embedded OpenAPI 3 document.
func serveOpenAPIv3(w http.ResponseWriter, r *http.Request) {
	serveDocument(w, openAPIv3Document)
}

func serveDocument(w http.ResponseWriter, doc []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
}
