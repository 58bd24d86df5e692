package callerauth

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// FuzzParseKeys checks that ParseKeys never panics, and that whatever it
// accepts is sound: every name is valid and unique, every hash is unique,
// and writing the keys back out in the file format parses to the same keys.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("alice 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"))
	f.Add([]byte("# c\r\n\r\nbob\t9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08 # t\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseKeys(bytes.NewReader(data))
		if err != nil {
			if keys != nil {
				t.Fatalf("ParseKeys returned keys with error %v", err)
			}
			return
		}
		names := map[string]bool{}
		hashes := map[[32]byte]bool{}
		var out strings.Builder
		for _, e := range keys.entries {
			if err := checkName(e.name); err != nil || e.name == "" {
				t.Fatalf("accepted name %q: %v", e.name, err)
			}
			if names[e.name] || hashes[e.hash] {
				t.Fatalf("accepted a duplicate: %q", e.name)
			}
			names[e.name], hashes[e.hash] = true, true
			if !bytes.Contains(data, []byte(e.name)) {
				t.Fatalf("name %q is not in the input", e.name)
			}
			fmt.Fprintf(&out, "%s %s\n", e.name, hex.EncodeToString(e.hash[:]))
		}
		again, err := ParseKeys(strings.NewReader(out.String()))
		if err != nil {
			t.Fatalf("keys written back do not parse: %v\n%s", err, out.String())
		}
		if len(again.entries) != len(keys.entries) {
			t.Fatalf("round trip: %d keys, want %d", len(again.entries), len(keys.entries))
		}
		for i := range keys.entries {
			if again.entries[i] != keys.entries[i] {
				t.Fatalf("round trip: entry %d is %q, want %q", i, again.entries[i].name, keys.entries[i].name)
			}
		}
	})
}
