package gateway

import (
	"maps"
	"slices"
	"testing"
)

// TestAccessServiceQueryParams pins the query keys each route reads, as
// derived from access.proto's google.api.http bindings: a binding or field
// added later changes this table on purpose, never by accident.
func TestAccessServiceQueryParams(t *testing.T) {
	want := queryParams{
		"POST /v1/otp":                                 nil,
		"POST /v1/tokens:revoke":                       nil,
		"GET /v1/services/{service_id=*}/status":       {"identity"},
		"GET /v1/services/{service_id=*}/status:watch": {"until", "identity"},
	}
	got := accessServiceQueryParams()
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("query keys by route:\n got %q\nwant %q", got, want)
	}
}
