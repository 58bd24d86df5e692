package callerauth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on a keys file. They are far above any real file and keep a wrong
// path (a log file, /dev/zero) from being read into memory whole.
const (
	// MaxKeysFileBytes bounds the size of a keys file.
	MaxKeysFileBytes = 1 << 20
	// MaxLineBytes bounds one line of a keys file, comment or not.
	MaxLineBytes = 1024
	// MaxNameLen bounds a caller name.
	MaxNameLen = 128
	// MaxKeyLen bounds a presented key. Longer ones are refused before they
	// are hashed, so a caller cannot make the facade hash megabytes per call.
	MaxKeyLen = 512
)

// hashHexLen is the length of a SHA-256 digest in hex.
const hashHexLen = 2 * sha256.Size

// entry is one caller: its name and the SHA-256 of its key.
type entry struct {
	name string
	hash [sha256.Size]byte
}

// Keys is a parsed keys file: caller names and the SHA-256 digests of their
// API keys. The keys themselves are never held. A Keys is immutable and safe
// for concurrent use.
type Keys struct {
	entries []entry
}

// Len reports how many callers k holds.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.entries)
}

// Names returns the caller names in file order. Names are not secret.
func (k *Keys) Names() []string {
	if k == nil {
		return nil
	}
	names := make([]string, len(k.entries))
	for i, e := range k.entries {
		names[i] = e.name
	}
	return names
}

// Lookup returns the name of the caller whose key is key. It hashes key
// and compares the digest with every stored digest in constant time,
// without stopping at a match, so that how long it takes says nothing about
// which caller matched or how close a guess came. Keys longer than
// MaxKeyLen never match and are not hashed.
func (k *Keys) Lookup(key string) (name string, ok bool) {
	if k == nil || key == "" || len(key) > MaxKeyLen {
		return "", false
	}
	sum := sha256.Sum256([]byte(key))
	found, index := 0, 0
	for i := range k.entries {
		eq := subtle.ConstantTimeCompare(sum[:], k.entries[i].hash[:])
		index = subtle.ConstantTimeSelect(eq, i, index)
		found |= eq
	}
	if found != 1 {
		return "", false
	}
	return k.entries[index].name, true
}

// ParseKeys reads a keys file: one caller per line, as
//
//	name sha256hex
//
// where sha256hex is the SHA-256 of the caller's key in hex (64 digits,
// either case) and name is 1 to MaxNameLen characters of [A-Za-z0-9._@:-].
// Blank lines and lines starting with # are ignored; a # field after the
// digest starts a trailing comment. Names and digests must be unique.
//
// Errors name the line and what is wrong with it, never the line's
// content: an operator who pastes a raw key into the file must not find it
// in the logs.
func ParseKeys(r io.Reader) (*Keys, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKeysFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	if len(data) > MaxKeysFileBytes {
		return nil, fmt.Errorf("keys file is larger than %d bytes", MaxKeysFileBytes)
	}
	k := &Keys{}
	nameLine := map[string]int{}
	hashLine := map[[sha256.Size]byte]int{}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if len(line) > MaxLineBytes {
			return nil, fmt.Errorf("line %d: longer than %d bytes", n, MaxLineBytes)
		}
		e, err := parseLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if e == nil {
			continue
		}
		if prev, dup := nameLine[e.name]; dup {
			return nil, fmt.Errorf("line %d: name already used on line %d", n, prev)
		}
		if prev, dup := hashLine[e.hash]; dup {
			return nil, fmt.Errorf("line %d: key hash already used on line %d", n, prev)
		}
		nameLine[e.name], hashLine[e.hash] = n, n
		k.entries = append(k.entries, *e)
	}
	return k, nil
}

// errFormat says what a line must look like.
var errFormat = errors.New("want `name sha256hex`")

// parseLine parses one line; a nil entry means a blank or comment line.
func parseLine(line string) (*entry, error) {
	line = strings.TrimSpace(line) // also drops the \r of CRLF files
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || (len(fields) > 2 && fields[2][0] != '#') {
		return nil, fmt.Errorf("%w, found %d fields", errFormat, len(fields))
	}
	name, digest := fields[0], fields[1]
	if err := checkName(name); err != nil {
		return nil, err
	}
	if len(digest) != hashHexLen {
		// A raw key pasted in place of its hash usually lands here; say
		// so without repeating it.
		return nil, fmt.Errorf("%w: the hash must be %d hex digits (the SHA-256 of the key, not the key), found %d characters",
			errFormat, hashHexLen, len(digest))
	}
	e := &entry{name: name}
	if _, err := hex.Decode(e.hash[:], []byte(digest)); err != nil {
		return nil, fmt.Errorf("%w: the hash is not hexadecimal", errFormat)
	}
	return e, nil
}

// checkName checks a caller name. Names appear in logs and audit records,
// so they are kept to characters that need no quoting.
func checkName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("name longer than %d characters", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return fmt.Errorf("name has a character outside [A-Za-z0-9._@:-] at position %d", i+1)
		}
	}
	return nil
}

func nameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._@:-", c) >= 0
}
