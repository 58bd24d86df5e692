package gateway

import (
	"encoding/json"
	"log/slog"
	"testing"
)

// swagger is the part of an OpenAPI v2 document the contract tests read.
type swagger struct {
	Paths map[string]map[string]struct {
		Summary     string `json:"summary"`
		OperationID string `json:"operationId"`
	} `json:"paths"`
	Definitions map[string]struct {
		Description string `json:"description"`
		Properties  map[string]struct {
			Description string `json:"description"`
		} `json:"properties"`
	} `json:"definitions"`
}

func TestOpenAPIDocumentListsEveryRouteDocumented(t *testing.T) {
	var doc swagger
	if err := json.Unmarshal(OpenAPIDocument(), &doc); err != nil {
		t.Fatalf("the embedded document is not JSON: %v", err)
	}
	routes := []struct{ path, method, operation string }{
		{"/v1/otp", "post", "AccessService_GenerateOTP"},
		{"/v1/services/{service_id}/status", "get", "AccessService_GetServiceStatus"},
		{"/v1/tokens:revoke", "post", "AccessService_RevokeToken"},
		{"/v1/services/{service_id}/status:watch", "get", "AccessService_WatchServiceStatus"},
	}
	for _, r := range routes {
		op, ok := doc.Paths[r.path][r.method]
		if !ok {
			t.Errorf("%s %s: missing", r.method, r.path)
			continue
		}
		if op.OperationID != r.operation || op.Summary == "" {
			t.Errorf("%s %s: operation %q summary %q, want %q with a summary", r.method, r.path, op.OperationID, op.Summary, r.operation)
		}
	}
	if len(doc.Paths) != len(routes) {
		t.Errorf("the document has %d paths, want %d", len(doc.Paths), len(routes))
	}
	for _, name := range []string{"v1GenerateOTPRequest", "v1GenerateOTPResponse", "v1GetServiceStatusResponse", "v1RevokeTokenRequest"} {
		def, ok := doc.Definitions[name]
		if !ok {
			t.Errorf("definition %s: missing", name)
			continue
		}
		for field, prop := range def.Properties {
			if prop.Description == "" {
				t.Errorf("%s.%s has no description", name, field)
			}
		}
	}
	if fields := doc.Definitions["v1GenerateOTPRequest"].Properties; len(fields) != 5 {
		t.Errorf("GenerateOTPRequest has %d fields in the document, want owner, endpoint_id, description, request_id, identity", len(fields))
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
