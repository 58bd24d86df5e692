// Command openapiv3 makes the facade's OpenAPI 3 document from the OpenAPI
// 2 document that buf generates (protoc-gen-openapiv2), so that both come
// from the same protos and the same annotations: security, error
// responses, headers and descriptions are written once, in access.proto.
// Run it after buf generate, from anywhere in the checkout:
//
//	go -C tools run ./openapiv3
//
// It converts with kin-openapi's openapi2conv (pinned by tools/go.mod) and
// then says in OpenAPI 3 what OpenAPI 2 could not: the caller key is an
// HTTP bearer scheme, not an API key whose value carries "Bearer ". The
// result is validated before it is written beside the OpenAPI 2 one, in
// the gateway that embeds and serves both (internal/gateway/openapiv3).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
)

// callerKeyScheme is the security scheme's name in access.proto.
const callerKeyScheme = "CallerKey"

func main() {
	root := flag.String("root", "..", "the checkout's root `directory`")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "openapiv3:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	in := filepath.Join(root, "internal/gateway/openapiv2/access.swagger.json")
	data, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("reading the OpenAPI 2 document (run buf generate first): %w", err)
	}
	out, err := convert(data)
	if err != nil {
		return err
	}
	path := filepath.Join(root, "internal/gateway/openapiv3/access.openapi.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating the OpenAPI 3 document's directory: %w", err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// convert turns the OpenAPI 2 document v2 into the OpenAPI 3 document, as
// indented JSON ending in a newline.
func convert(v2 []byte) ([]byte, error) {
	var doc2 openapi2.T
	if err := json.Unmarshal(v2, &doc2); err != nil {
		return nil, fmt.Errorf("decoding the OpenAPI 2 document: %w", err)
	}
	doc3, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, fmt.Errorf("converting to OpenAPI 3: %w", err)
	}
	scheme := doc3.Components.SecuritySchemes[callerKeyScheme]
	if scheme == nil || scheme.Value == nil {
		return nil, fmt.Errorf("the OpenAPI 2 document has no %s security scheme", callerKeyScheme)
	}
	scheme.Value = &openapi3.SecurityScheme{
		Type:        "http",
		Scheme:      "bearer",
		Description: "A caller API key, sent as \"Authorization: Bearer <key>\". Where the facade verifies client certificates (mutual TLS), a verified certificate authenticates the caller instead, and no key is needed.",
	}
	if err := doc3.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI 3 document is invalid: %w", err)
	}
	raw, err := json.Marshal(doc3)
	if err != nil {
		return nil, fmt.Errorf("encoding the OpenAPI 3 document: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("indenting the OpenAPI 3 document: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
