package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/radkit/radkit-access-facade/server/upstream"
)

// Default is the name of the identity whose credentials come from the
// facade's own configuration rather than from an identities file: a
// single-identity facade is a registry with this one entry.
const Default = "default"

// AnyCaller is the grants key that applies to every authenticated caller.
const AnyCaller = "*"

// Caller identity prefixes, as package callerauth writes them. A grants key
// without a prefix names a caller-keys name.
const (
	keyPrefix  = "key:"
	certPrefix = "cert:"
)

// Limits on an identities file and the secret files it names. They are far
// above any real file and keep a wrong path from being read whole.
const (
	maxFileBytes   = 4 << 20
	maxSecretBytes = 64 << 10
	maxNameLen     = 63
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidName reports whether name is a well-formed identity name: 1 to 63
// characters, a lower-case letter or digit, then lower-case letters,
// digits, ".", "_" and "-". It is the one check of identity names, for the
// identities file and for the identity field of requests.
func ValidName(name string) bool { return len(name) <= maxNameLen && nameRE.MatchString(name) }

// NameRule says in words what ValidName accepts, for error messages.
const NameRule = `1 to 63 characters: a lower-case letter or digit, then lower-case letters, digits, ".", "_" and "-"`

// Credentials are one identity's upstream credentials, as upstream.Config
// takes them: ClientID with ClientSecret, APIToken, or all three (the API
// token gets access tokens and the client credentials revoke tokens). They
// are never logged.
type Credentials struct {
	ClientID     string
	ClientSecret string
	APIToken     string
	// ClientSecretExpiresAt is when the client secret expires (the
	// admin client's expires_at), zero when not known. An API token's
	// expiry is read from the token itself.
	ClientSecretExpiresAt time.Time
}

// Credential kinds, as CredentialExpiry.Kind and the metric label say them.
const (
	KindAPIToken     = "api_token"
	KindClientSecret = "client_secret"
)

// Expiry is when one of an identity's credentials expires.
type Expiry struct {
	// Kind is KindAPIToken or KindClientSecret.
	Kind string `json:"kind"`
	// At is the expiry.
	At time.Time `json:"expires_at"`
}

// Expiries returns the known expiry of each credential c holds: the API
// token's "exp" claim (read unverified) and the client secret's
// ClientSecretExpiresAt.
func (c Credentials) Expiries() []Expiry {
	var out []Expiry
	if c.APIToken != "" {
		if at, ok := upstream.TokenExpiry(c.APIToken); ok {
			out = append(out, Expiry{Kind: KindAPIToken, At: at})
		}
	}
	if c.ClientSecret != "" && !c.ClientSecretExpiresAt.IsZero() {
		out = append(out, Expiry{Kind: KindClientSecret, At: c.ClientSecretExpiresAt})
	}
	return out
}

// tokenCredentialExpiry is the expiry of the credential that gets access
// tokens (the API token when there is one, as upstream.Client uses it),
// zero when not known.
func (c Credentials) tokenCredentialExpiry() (string, time.Time) {
	kind := KindClientSecret
	if c.APIToken != "" {
		kind = KindAPIToken
	}
	for _, e := range c.Expiries() {
		if e.Kind == kind {
			return kind, e.At
		}
	}
	return kind, time.Time{}
}

// String hides the secrets, so that printing Credentials by mistake leaks
// nothing.
func (c Credentials) String() string {
	return fmt.Sprintf("identity.Credentials{ClientID:%q ClientSecret:<redacted> APIToken:<redacted>}", c.ClientID)
}

// GoString is String.
func (c Credentials) GoString() string { return c.String() }

// check is upstream's one check of which credentials are needed.
func (c Credentials) check() error {
	return upstream.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, APIToken: c.APIToken}.CheckCredentials()
}

// Identity is one named upstream identity.
type Identity struct {
	Name        string
	Credentials Credentials
}

// Spec is a whole identities configuration: the identities, in the order
// of the file (the default identity, when configured, first), and the
// grants, by normalised caller identity ("key:<name>", "cert:<subject>" or
// AnyCaller), each list in order of preference (the first is the caller's
// default).
type Spec struct {
	Identities []Identity
	Grants     map[string][]string
	// FromFile is true when the Spec came from an identities file: only
	// then are authenticated callers limited to their grants. Without a
	// file every caller may use the one identity, as before identities
	// existed.
	FromFile bool
}

// Names returns the identity names in order.
func (s Spec) Names() []string {
	names := make([]string, len(s.Identities))
	for i, id := range s.Identities {
		names[i] = id.Name
	}
	return names
}

// Validate reports a Spec the registry cannot serve: bad or duplicate
// names, unusable credentials, grants naming unknown identities.
func (s Spec) Validate() error {
	seen := make(map[string]bool, len(s.Identities))
	for _, id := range s.Identities {
		switch {
		case !ValidName(id.Name):
			return fmt.Errorf("identity %q: invalid name: want %s", id.Name, NameRule)
		case seen[id.Name]:
			return fmt.Errorf("identity %q: defined twice", id.Name)
		}
		seen[id.Name] = true
		if err := id.Credentials.check(); err != nil {
			return fmt.Errorf("identity %q: %w", id.Name, err)
		}
	}
	for caller, names := range s.Grants {
		if len(names) == 0 {
			return fmt.Errorf("grants: %q: empty list", caller)
		}
		for i, n := range names {
			if !seen[n] {
				return fmt.Errorf("grants: %q: unknown identity %q", caller, n)
			}
			if slices.Index(names, n) != i {
				return fmt.Errorf("grants: %q: identity %q listed twice", caller, n)
			}
		}
	}
	return nil
}

// SingleSpec is the Spec of a facade without an identities file: one
// identity named Default that every caller may use.
func SingleSpec(c Credentials) Spec {
	return Spec{
		Identities: []Identity{{Name: Default, Credentials: c}},
		Grants:     map[string][]string{AnyCaller: {Default}},
	}
}

// fileYAML is the identities file.
type fileYAML struct {
	Identities map[string]identityYAML `yaml:"identities"`
	Grants     map[string][]string     `yaml:"grants"`
}

// identityYAML is one identity in the file: paths, never secrets.
type identityYAML struct {
	APITokenFile     string `yaml:"api_token_file"`
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientSecretExpiresAt is the client secret's expires_at, RFC 3339.
	ClientSecretExpiresAt string `yaml:"client_secret_expires_at"`
}

// LoadFile reads the identities file at path and the secret files it
// names (relative paths are relative to the file's directory), and returns
// the Spec they make. def, when not nil, is the identity named Default
// (the facade's own credentials); the file may then grant it, but not
// define it. Errors name files and fields, never secrets.
func LoadFile(path string, def *Credentials) (Spec, error) {
	data, err := readBounded(path, maxFileBytes)
	if err != nil {
		return Spec{}, fmt.Errorf("identities file: %w", err)
	}
	spec, err := parse(data, filepath.Dir(path), def)
	if err != nil {
		return Spec{}, fmt.Errorf("identities file %s: %w", path, err)
	}
	return spec, nil
}

// parse decodes an identities file strictly (unknown fields are errors)
// and reads the secret files it names, relative to dir.
func parse(data []byte, dir string, def *Credentials) (Spec, error) {
	var f fileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return Spec{}, errors.New("empty file")
		}
		return Spec{}, yamlError(err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Spec{}, errors.New("decode: more than one YAML document")
	}
	order, err := identityOrder(data)
	if err != nil {
		return Spec{}, err
	}
	spec := Spec{Grants: make(map[string][]string, len(f.Grants)), FromFile: true}
	if def != nil {
		spec.Identities = append(spec.Identities, Identity{Name: Default, Credentials: *def})
	}
	for _, name := range order {
		if name == Default && def != nil {
			return Spec{}, fmt.Errorf("identity %q: the facade's own credentials are the identity %q; grant it, do not define it", name, Default)
		}
		y := f.Identities[name]
		if !ValidName(name) {
			return Spec{}, fmt.Errorf("identity %q: invalid name: want %s", name, NameRule)
		}
		creds, err := y.read(dir)
		if err != nil {
			return Spec{}, fmt.Errorf("identity %q: %w", name, err)
		}
		spec.Identities = append(spec.Identities, Identity{Name: name, Credentials: creds})
	}
	for caller, names := range f.Grants {
		key, err := grantKey(caller)
		if err != nil {
			return Spec{}, fmt.Errorf("grants: %w", err)
		}
		if _, dup := spec.Grants[key]; dup {
			return Spec{}, fmt.Errorf("grants: caller %q listed twice", key)
		}
		spec.Grants[key] = names
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// yamlError describes a decoding error of the identities file by line and
// kind only. yaml.v3's own text quotes the file: the first characters of a
// value of the wrong type, a misplaced key whole, an anchor's name; in a
// file that wrongly holds a secret inline, that is the secret, on its way
// to the log.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// A syntax error: yaml.v3 words them from a fixed set, but for
		// names it quotes (an anchor's, say).
		return fmt.Errorf("decode: %s", quoted.ReplaceAllString(err.Error(), "…"))
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		line := "line ?"
		if m := yamlLine.FindString(e); m != "" {
			line = m
		}
		switch m := unknownField.FindStringSubmatch(e); {
		case m != nil && (m[1] == "client_secret" || m[1] == "api_token"):
			msgs = append(msgs, fmt.Sprintf("%s: field %s: secrets are never written in the file: name a file holding it (%s_file)", line, m[1], m[1]))
		case m != nil:
			// Not named: a secret pasted as a key would be.
			msgs = append(msgs, line+": unknown field (an identity has api_token_file, client_id and client_secret_file; the file has identities and grants)")
		case strings.Contains(e, "already defined"):
			msgs = append(msgs, line+": a key already defined above (the key is not repeated here)")
		case strings.Contains(e, "cannot unmarshal"):
			msgs = append(msgs, line+": a value of the wrong kind (identities is a mapping of names to mappings, grants a mapping of callers to lists of names)")
		default:
			msgs = append(msgs, line+": invalid value")
		}
	}
	return fmt.Errorf("decode: %s", strings.Join(msgs, "; "))
}

var (
	yamlLine     = regexp.MustCompile(`^line \d+`)
	unknownField = regexp.MustCompile(`^line \d+: field (\S+) not found in type`)
	quoted       = regexp.MustCompile("`[^`]*`|'[^']*'|\"[^\"]*\"")
)

// identityOrder returns the identity names in the order of the file.
// yaml/v3 decodes a mapping into a Go map, which forgets it.
func identityOrder(data []byte) ([]string, error) {
	var doc struct {
		Identities yaml.Node `yaml:"identities"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	n := doc.Identities
	if n.Kind == 0 {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("identities: want a mapping of name to credentials")
	}
	names := make([]string, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		names = append(names, n.Content[i].Value)
	}
	return names, nil
}

// grantKey normalises a grants key to a caller identity as callerauth
// writes it: "*", "cert:<subject>", or "key:<name>" (a bare name is a
// caller-keys name).
func grantKey(k string) (string, error) {
	switch {
	case k == AnyCaller:
		return k, nil
	case strings.HasPrefix(k, certPrefix) && len(k) > len(certPrefix):
		return k, nil
	case strings.HasPrefix(k, keyPrefix) && len(k) > len(keyPrefix):
		return k, nil
	case k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) || strings.Contains(k, ":"):
		return "", fmt.Errorf("caller %q: want a caller-keys name, \"cert:<subject>\" or \"*\"", k)
	default:
		return keyPrefix + k, nil
	}
}

// read reads the identity's secret files.
func (y identityYAML) read(dir string) (Credentials, error) {
	var c Credentials
	switch {
	case y.APITokenFile == "" && y.ClientID == "" && y.ClientSecretFile == "":
		return c, errors.New("no credentials: set api_token_file, or client_id and client_secret_file")
	case (y.ClientID == "") != (y.ClientSecretFile == ""):
		return c, errors.New("client_id and client_secret_file must be set together")
	}
	c.ClientID = y.ClientID
	var err error
	if y.ClientSecretExpiresAt != "" {
		if y.ClientSecretFile == "" {
			return c, errors.New("client_secret_expires_at needs client_id and client_secret_file")
		}
		if c.ClientSecretExpiresAt, err = time.Parse(time.RFC3339, y.ClientSecretExpiresAt); err != nil {
			return c, fmt.Errorf("client_secret_expires_at: want an RFC 3339 time such as 2026-12-31T23:59:59Z: %w", err)
		}
	}
	if y.ClientSecretFile != "" {
		if c.ClientSecret, err = readSecret(dir, y.ClientSecretFile); err != nil {
			return c, fmt.Errorf("client_secret_file: %w", err)
		}
	}
	if y.APITokenFile != "" {
		if c.APIToken, err = readSecret(dir, y.APITokenFile); err != nil {
			return c, fmt.Errorf("api_token_file: %w", err)
		}
	}
	if err := c.check(); err != nil {
		// CheckCredentials names upstream.Config fields; say it in the
		// file's terms.
		var ce *upstream.CredentialsError
		if !errors.As(err, &ce) {
			return c, err
		}
		fileKey := map[string]string{"ClientID": "client_id", "ClientSecret": "client_secret_file", "APIToken": "api_token_file"}
		return c, errors.New(ce.Explain(func(field string) string { return fileKey[field] }))
	}
	return c, nil
}

// readSecret reads a secret file, relative to dir, trimmed of white space.
func readSecret(dir, path string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return ReadSecretFile(path)
}

// ReadSecretFile reads a secret file of at most 64 KiB, trimmed of white
// space; an empty one is an error. Errors name the file, never the secret.
func ReadSecretFile(path string) (string, error) {
	b, err := readBounded(path, maxSecretBytes)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// readBounded reads a whole file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the path
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// Files returns the identities file at path and the secret files it names
// (relative paths resolved as LoadFile resolves them), for a watcher that
// reloads when one changes. A file that cannot be read or parsed names
// only itself: LoadFile will say what is wrong with it.
func Files(path string) []string {
	files := []string{path}
	data, err := readBounded(path, maxFileBytes)
	if err != nil {
		return files
	}
	var f fileYAML
	if err := yaml.Unmarshal(data, &f); err != nil {
		return files
	}
	dir := filepath.Dir(path)
	for _, y := range f.Identities {
		for _, p := range []string{y.APITokenFile, y.ClientSecretFile} {
			if p == "" {
				continue
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			files = append(files, p)
		}
	}
	return files
}
