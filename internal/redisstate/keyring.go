package redisstate

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a state key: AES-256.
const KeySize = 32

// sealVersion is the first byte of every sealed value, so that the format
// can change without guessing.
const sealVersion = 1

// keyIDSize is the size of the key ID stored in each sealed value.
const keyIDSize = 4

// ErrUnknownKey is matched (errors.Is) by the error of Open for a value
// sealed with a key that is not in the keyring; the error is an
// *UnknownKeyError naming the key's ID.
var ErrUnknownKey = errors.New("redisstate: value sealed with a key not in the keyring")

// UnknownKeyError is Open's error for a value sealed under a key the
// keyring does not hold. The ID (see KeyID) reveals nothing of the key, and
// tells an operator which key must be put back for reading.
type UnknownKeyError struct {
	// ID is the hex KeyID of the key the value was sealed under.
	ID string
}

// Error names the key ID.
func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("%v: key ID %s", ErrUnknownKey, e.ID)
}

// Unwrap returns ErrUnknownKey.
func (e *UnknownKeyError) Unwrap() error { return ErrUnknownKey }

// Keyring seals secret values with AES-256-GCM under its current key and
// opens values sealed under any of its keys: to rotate, make the new key
// current and keep the old one for reading until the values it sealed have
// expired. Each sealed value carries the ID of its key (derived from the
// key, revealing nothing of it).
type Keyring struct {
	currentID [keyIDSize]byte
	aeads     map[[keyIDSize]byte]cipher.AEAD
}

// NewKeyring returns a keyring that seals with current and opens with
// current and old. Every key is KeySize bytes.
func NewKeyring(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{aeads: map[[keyIDSize]byte]cipher.AEAD{}}
	for i, key := range append([][]byte{current}, old...) {
		if len(key) != KeySize {
			return nil, fmt.Errorf("redisstate: state key %d is %d bytes, want %d", i, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("redisstate: state key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("redisstate: state key %d: %w", i, err)
		}
		id := KeyID(key)
		if i == 0 {
			k.currentID = id
		}
		k.aeads[id] = aead
	}
	return k, nil
}

// KeyID is the ID stored with values sealed under key: the first bytes of
// a domain-separated SHA-256 of it.
func KeyID(key []byte) [keyIDSize]byte {
	sum := sha256.Sum256(append([]byte("radkit-facade state key id\x00"), key...))
	return [keyIDSize]byte(sum[:keyIDSize])
}

// ParseKey decodes a state key written as base64 (standard or URL alphabet,
// padded or not) or hex, surrounding white space ignored. The error never
// repeats the input.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("redisstate: a state key must be %d random bytes written as base64 or hex", KeySize)
}

// Seal encrypts plaintext under the current key, binding it to aad (the
// Redis key it is stored under, say) so that it cannot be moved to
// another key unnoticed.
func (k *Keyring) Seal(plaintext, aad []byte) []byte {
	aead := k.aeads[k.currentID]
	out := make([]byte, 0, 1+keyIDSize+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, k.currentID[:]...)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, aad)
}

// Open decrypts a value sealed by Seal under any key of the keyring with
// the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+keyIDSize || sealed[0] != sealVersion {
		return nil, errors.New("redisstate: not a sealed value")
	}
	aead, ok := k.aeads[[keyIDSize]byte(sealed[1:1+keyIDSize])]
	if !ok {
		return nil, &UnknownKeyError{ID: hex.EncodeToString(sealed[1 : 1+keyIDSize])}
	}
	rest := sealed[1+keyIDSize:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("redisstate: sealed value too short")
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("redisstate: open sealed value: %w", err)
	}
	return plain, nil
}
