package gateway

import "testing"

// TestAcceptsGzip checks the reading of Accept-Encoding (RFC 9110, section
// 12.5.3), which decides whether the compressed files go out as stored.
func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"deflate, gzip;q=0.5, br"}, true},
		{[]string{"br", "gzip"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"*"}, true},
		{[]string{"identity"}, false},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"gzip;q=0, *"}, false}, // named and refused: "*" does not bring it back
		{[]string{"*;q=0"}, false},
		{[]string{"br, *;q=0.1"}, true},
		{[]string{"gzip;q=nonsense"}, false},
		{[]string{"gzipped"}, false},
	}
	for _, tc := range tests {
		if got := acceptsGzip(tc.values); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.values, got, tc.want)
		}
	}
}
