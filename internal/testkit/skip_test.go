package testkit_test

import (
	"testing"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

func TestInCI(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  bool
	}{
		{"", false},
		{"false", false},
		{"0", false},
		{"true", true},
		{"1", true},
		{"yes", true}, // not a boolean, but someone meant CI
	} {
		t.Setenv("CI", tt.value)
		if got := testkit.InCI(); got != tt.want {
			t.Errorf("CI=%q: InCI() = %v, want %v", tt.value, got, tt.want)
		}
	}
}
