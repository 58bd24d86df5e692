package requestid_test

import (
	"context"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/internal/requestid"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"abc-123", true},
		{"A.b_c:d-e", true},
		{"1ryq-e8n8-5g5n", true},
		{strings.Repeat("a", requestid.MaxLen), true},
		{strings.Repeat("a", requestid.MaxLen+1), false},
		{"", false},
		{"has space", false},
		{"new\nline", false},
		{"slash/", false},
		{"é", false},
		{"a=b", false},
	} {
		if got := requestid.Valid(tc.id); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestNewIsValidAndFresh(t *testing.T) {
	a, b := requestid.New(), requestid.New()
	if !requestid.Valid(a) || len(a) != 32 {
		t.Errorf("New() = %q: want 32 valid characters", a)
	}
	if a == b {
		t.Errorf("New() returned %q twice", a)
	}
}

func TestEnsure(t *testing.T) {
	if got := requestid.Ensure("mine-1"); got != "mine-1" {
		t.Errorf("Ensure(valid) = %q, want it kept", got)
	}
	if got := requestid.Ensure("bad id"); got == "bad id" || !requestid.Valid(got) {
		t.Errorf("Ensure(malformed) = %q, want a generated ID", got)
	}
}

func TestContext(t *testing.T) {
	if _, ok := requestid.FromContext(context.Background()); ok {
		t.Error("FromContext(empty) reported an ID")
	}
	ctx := requestid.NewContext(context.Background(), "r-1")
	if id, ok := requestid.FromContext(ctx); !ok || id != "r-1" {
		t.Errorf("FromContext = %q, %v; want r-1, true", id, ok)
	}
}
