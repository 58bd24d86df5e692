package callerauth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/internal/callerauth"
)

// hashOf is what an operator puts in the keys file for key.
func hashOf(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Keys used across the tests. They look like what the documented recipe
// makes, so that a test that finds one in a log or an error means it.
const (
	aliceKey = "q8ZkT3vYcN0xW1mB7rLpA2sD9fGhJ4eK6uI5oP0aQwE"
	bobKey   = "Zx9CvB8nM7aS6dF5gH4jK3lQ2wE1rT0yU9iO8pA7sDf"
	carolKey = "Lk2Jh3Gf4Ds5Ap6Qo7Wi8Eu9Ry0TmNbVcXz1aSdFgH"
)

func TestParseKeys(t *testing.T) {
	alice, bob := hashOf(aliceKey), hashOf(bobKey)
	tests := []struct {
		name      string
		file      string
		wantNames []string
		// For failures: what the error must say, and what it must not.
		wantErr   []string
		forbidden []string
	}{
		{
			name:      "two callers",
			file:      "alice " + alice + "\nbob " + bob + "\n",
			wantNames: []string{"alice", "bob"},
		},
		{
			name:      "no trailing newline",
			file:      "alice " + alice,
			wantNames: []string{"alice"},
		},
		{
			name: "comments, blank lines, whitespace",
			file: "# callers of the facade\n\n   \n\talice\t " + alice + "   # rotated 2025-01\n" +
				"  # bob is next\nbob " + bob + " #\n",
			wantNames: []string{"alice", "bob"},
		},
		{
			name:      "CRLF",
			file:      "# windows\r\nalice " + alice + "\r\nbob " + bob + "\r\n\r\n",
			wantNames: []string{"alice", "bob"},
		},
		{
			name:      "upper-case hex",
			file:      "alice " + strings.ToUpper(alice) + "\n",
			wantNames: []string{"alice"},
		},
		{
			name:      "every name character",
			file:      "svc.billing_batch-01@prod:eu " + alice + "\n",
			wantNames: []string{"svc.billing_batch-01@prod:eu"},
		},
		{
			name:      "longest name",
			file:      strings.Repeat("n", callerauth.MaxNameLen) + " " + alice + "\n",
			wantNames: []string{strings.Repeat("n", callerauth.MaxNameLen)},
		},
		{
			name:      "empty file",
			file:      "",
			wantNames: []string{},
		},
		{
			name:      "only comments",
			file:      "# nobody yet\n",
			wantNames: []string{},
		},
		{
			name:    "bad hex",
			file:    "alice " + alice + "\nbob " + strings.Repeat("g", 64) + "\n",
			wantErr: []string{"line 2", "not hexadecimal"},
		},
		{
			name:    "hash too short",
			file:    "alice " + alice[:63] + "\n",
			wantErr: []string{"line 1", "64 hex digits", "found 63 characters"},
		},
		{
			name:    "hash too long",
			file:    "alice " + alice + "0\n",
			wantErr: []string{"line 1", "found 65 characters"},
		},
		{
			name:      "raw key instead of its hash",
			file:      "# keys\nalice " + aliceKey + "\n",
			wantErr:   []string{"line 2", "not the key"},
			forbidden: []string{aliceKey},
		},
		{
			name:      "raw key alone on a line",
			file:      aliceKey + "\n",
			wantErr:   []string{"line 1", "found 1 fields"},
			forbidden: []string{aliceKey},
		},
		{
			name:    "duplicate name",
			file:    "alice " + alice + "\n\nalice " + bob + "\n",
			wantErr: []string{"line 3", "name already used on line 1"},
		},
		{
			name:      "duplicate hash, different case",
			file:      "alice " + alice + "\nbob " + strings.ToUpper(alice) + "\n",
			wantErr:   []string{"line 2", "hash already used on line 1"},
			forbidden: []string{alice},
		},
		{
			name:    "bad name character",
			file:    "alice/admin " + alice + "\n",
			wantErr: []string{"line 1", "outside [A-Za-z0-9._@:-]", "position 6"},
		},
		{
			name:    "non-ASCII name",
			file:    "alicé " + alice + "\n",
			wantErr: []string{"line 1", "outside [A-Za-z0-9._@:-]"},
		},
		{
			name:    "name too long",
			file:    strings.Repeat("n", callerauth.MaxNameLen+1) + " " + alice + "\n",
			wantErr: []string{"line 1", "longer than 128"},
		},
		{
			name:      "third field not a comment",
			file:      "alice " + alice + " " + aliceKey + "\n",
			wantErr:   []string{"line 1", "found 3 fields"},
			forbidden: []string{aliceKey},
		},
		{
			name:    "huge line",
			file:    "alice " + alice + "\n# " + strings.Repeat("x", callerauth.MaxLineBytes) + "\n",
			wantErr: []string{"line 2", "longer than 1024 bytes"},
		},
		{
			name:    "huge file",
			file:    strings.Repeat("# padding padding padding\n", callerauth.MaxKeysFileBytes/26+1),
			wantErr: []string{"larger than"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := callerauth.ParseKeys(strings.NewReader(tt.file))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ParseKeys accepted the file (%d keys), want an error", keys.Len())
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				for _, bad := range tt.forbidden {
					if strings.Contains(err.Error(), bad) {
						t.Errorf("error %q repeats %q", err, bad)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if got := keys.Names(); !slices.Equal(got, tt.wantNames) {
				t.Errorf("names = %q, want %q", got, tt.wantNames)
			}
			if keys.Len() != len(tt.wantNames) {
				t.Errorf("Len = %d, want %d", keys.Len(), len(tt.wantNames))
			}
		})
	}
}

func TestLookup(t *testing.T) {
	long := strings.Repeat("k", callerauth.MaxKeyLen)
	tooLong := long + "k"
	file := strings.Join([]string{
		"alice " + hashOf(aliceKey),
		"bob " + hashOf(bobKey),
		"long " + hashOf(long),
		"toolong " + hashOf(tooLong),
	}, "\n")
	keys, err := callerauth.ParseKeys(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		key      string
		wantName string
		wantOK   bool
	}{
		{"first", aliceKey, "alice", true},
		{"second", bobKey, "bob", true},
		{"longest allowed", long, "long", true},
		{"too long, even with its hash on file", tooLong, "", false},
		{"unknown", carolKey, "", false},
		{"empty", "", "", false},
		{"prefix of a key", aliceKey[:20], "", false},
		{"key with a trailing newline", aliceKey + "\n", "", false},
		{"the hash itself", hashOf(aliceKey), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, ok := keys.Lookup(tt.key)
			if name != tt.wantName || ok != tt.wantOK {
				t.Errorf("Lookup = %q, %v; want %q, %v", name, ok, tt.wantName, tt.wantOK)
			}
		})
	}
	var none *callerauth.Keys
	if _, ok := none.Lookup(aliceKey); ok {
		t.Error("nil Keys matched a key")
	}
}
