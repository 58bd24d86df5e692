package main

import (
	"io"
	"strings"
	"testing"
)

// flagCase is one command line and environment, and the setting they
// must give, or the name (a flag or a variable) an error must carry.
type flagCase[T comparable] struct {
	name    string
	args    []string
	env     map[string]string
	want    T
	wantErr string
}

// runFlagCases parses each case as the command does and checks what
// setting reads from the parsed config, or that the parse failed naming
// wantErr.
func runFlagCases[T comparable](t *testing.T, cases []flagCase[T], setting func(config) T) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseConfig: %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if got := setting(c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
