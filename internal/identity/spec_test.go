package identity

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFiles writes name → content under a new temporary directory and
// returns it.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadFile(t *testing.T) {
	secrets := map[string]string{"a.jwt": "token-a\n", "b.secret": "secret-b\n", "empty": "\n"}
	def := &Credentials{ClientID: "env-client", ClientSecret: "env-secret"}
	tests := []struct {
		name    string
		yaml    string
		def     *Credentials
		wantErr string // substring; "" means success
		check   func(t *testing.T, s Spec)
	}{
		{
			name: "identities in file order, secrets read relative to the file, grants normalised",
			yaml: `
identities:
  customer-b:
    client_id: client-b
    client_secret_file: b.secret
  customer-a:
    api_token_file: a.jwt
grants:
  billing-service: [customer-a, customer-b]
  "cert:CN=enroll-bot": [customer-b]
  "*": [customer-a]
`,
			check: func(t *testing.T, s Spec) {
				if got, want := s.Names(), []string{"customer-b", "customer-a"}; !slices.Equal(got, want) {
					t.Errorf("names = %v, want %v (file order)", got, want)
				}
				if c := s.Identities[0].Credentials; c.ClientID != "client-b" || c.ClientSecret != "secret-b" || c.APIToken != "" {
					t.Errorf("customer-b credentials = %v (secret %q)", c, c.ClientSecret)
				}
				if c := s.Identities[1].Credentials; c.APIToken != "token-a" {
					t.Errorf("customer-a token not read from a.jwt (trimmed)")
				}
				if got := s.Grants["key:billing-service"]; !slices.Equal(got, []string{"customer-a", "customer-b"}) {
					t.Errorf("grants[key:billing-service] = %v", got)
				}
				if got := s.Grants["cert:CN=enroll-bot"]; !slices.Equal(got, []string{"customer-b"}) {
					t.Errorf("grants[cert:CN=enroll-bot] = %v", got)
				}
				if !s.FromFile {
					t.Error("FromFile = false")
				}
			},
		},
		{
			name: "the facade's own credentials are identity default, first, and may be granted",
			def:  def,
			yaml: "identities:\n  customer-a:\n    api_token_file: a.jwt\ngrants:\n  svc: [default, customer-a]\n",
			check: func(t *testing.T, s Spec) {
				if got, want := s.Names(), []string{"default", "customer-a"}; !slices.Equal(got, want) {
					t.Errorf("names = %v, want %v", got, want)
				}
				if s.Identities[0].Credentials != *def {
					t.Error("default identity does not carry the facade's credentials")
				}
			},
		},
		{name: "default defined in the file as well", def: def,
			yaml: "identities:\n  default:\n    api_token_file: a.jwt\n", wantErr: `identity "default"`},
		{name: "grant of default without the facade's credentials",
			yaml: "identities:\n  a:\n    api_token_file: a.jwt\ngrants:\n  svc: [default]\n", wantErr: `unknown identity "default"`},
		{name: "unknown field (an inline secret)",
			yaml: "identities:\n  a:\n    client_id: x\n    client_secret: hunter2\n", wantErr: "client_secret"},
		{name: "unknown top-level field", yaml: "identities: {}\ngrant: {}\n", wantErr: "grant"},
		{name: "upper-case name", yaml: "identities:\n  Customer:\n    api_token_file: a.jwt\n", wantErr: "invalid name"},
		{name: "name starting with a dot", yaml: "identities:\n  .a:\n    api_token_file: a.jwt\n", wantErr: "invalid name"},
		{name: "name of 64 characters", yaml: "identities:\n  " + strings.Repeat("a", 64) + ":\n    api_token_file: a.jwt\n", wantErr: "invalid name"},
		{name: "no credentials", yaml: "identities:\n  a: {}\n", wantErr: "no credentials"},
		{name: "client secret expiry read",
			yaml: "identities:\n  b:\n    client_id: x\n    client_secret_file: b.secret\n    client_secret_expires_at: 2027-06-30T00:00:00Z\n",
			check: func(t *testing.T, s Spec) {
				want := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
				if got := s.Identities[0].Credentials.ClientSecretExpiresAt; !got.Equal(want) {
					t.Errorf("ClientSecretExpiresAt = %v, want %v", got, want)
				}
			}},
		{name: "client secret expiry not RFC 3339",
			yaml: "identities:\n  b:\n    client_id: x\n    client_secret_file: b.secret\n    client_secret_expires_at: next week\n", wantErr: "client_secret_expires_at"},
		{name: "client secret expiry without a client secret",
			yaml: "identities:\n  a:\n    api_token_file: a.jwt\n    client_secret_expires_at: 2027-06-30T00:00:00Z\n", wantErr: "client_secret_expires_at needs"},
		{name: "client_id without secret file", yaml: "identities:\n  a:\n    client_id: x\n", wantErr: "set together"},
		{name: "client_id with a space", yaml: "identities:\n  b:\n    client_id: client one\n    client_secret_file: b.secret\n",
			wantErr: "client_id contains white space"},
		{name: "missing secret file", yaml: "identities:\n  a:\n    api_token_file: nope.jwt\n", wantErr: "nope.jwt"},
		{name: "empty secret file", yaml: "identities:\n  a:\n    api_token_file: empty\n", wantErr: "is empty"},
		{name: "grant to an unknown identity", yaml: "identities:\n  a:\n    api_token_file: a.jwt\ngrants:\n  svc: [a, b]\n", wantErr: `unknown identity "b"`},
		{name: "empty grant list", yaml: "identities:\n  a:\n    api_token_file: a.jwt\ngrants:\n  svc: []\n", wantErr: "empty list"},
		{name: "identity granted twice to one caller", yaml: "identities:\n  a:\n    api_token_file: a.jwt\ngrants:\n  svc: [a, a]\n", wantErr: "listed twice"},
		{name: "caller named twice (bare and key:)", yaml: "identities:\n  a:\n    api_token_file: a.jwt\ngrants:\n  svc: [a]\n  \"key:svc\": [a]\n", wantErr: "listed twice"},
		{name: "malformed caller", yaml: "identities:\n  a:\n    api_token_file: a.jwt\ngrants:\n  \"x:y\": [a]\n", wantErr: "caller"},
		{name: "duplicate identity key", yaml: "identities:\n  a:\n    api_token_file: a.jwt\n  a:\n    api_token_file: a.jwt\n", wantErr: "line 4: a key already defined"},
		{name: "not YAML", yaml: "identities: [", wantErr: "decode"},
		{name: "empty file", yaml: "", wantErr: "empty"},
		{name: "two documents", yaml: "identities: {}\n---\nidentities: {}\n", wantErr: "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"identities.yaml": tt.yaml}
			for k, v := range secrets {
				files[k] = v
			}
			dir := writeFiles(t, files)
			s, err := LoadFile(filepath.Join(dir, "identities.yaml"), tt.def)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadFile error = %v, want one containing %q", err, tt.wantErr)
				}
				for _, secret := range []string{"token-a", "secret-b", "hunter2"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q reveals a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			tt.check(t, s)
		})
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "customer-a": true, "0": true, "a.b_c-d": true, strings.Repeat("a", 63): true,
		"": false, "A": false, "-a": false, "_a": false, "a b": false, "a/b": false, "é": false, strings.Repeat("a", 64): false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCredentialsDoNotPrintSecrets(t *testing.T) {
	c := Credentials{ClientID: "id", ClientSecret: "s3cret", APIToken: "t0ken"}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "s3cret") || strings.Contains(s, "t0ken") {
			t.Errorf("%q reveals a secret", s)
		}
	}
}

// FuzzParse feeds arbitrary bytes to the identities file parser: it must
// never panic, and what it accepts must pass Validate.
func FuzzParse(f *testing.F) {
	f.Add([]byte("identities:\n  a:\n    api_token_file: a.jwt\ngrants:\n  svc: [a]\n  \"*\": [a]\n"))
	f.Add([]byte("identities:\n  b:\n    client_id: x\n    client_secret_file: b.secret\n"))
	f.Add([]byte("identities: [\n"))
	f.Add([]byte("grants:\n  \"cert:CN=x\": [default]\n"))
	dir := writeFiles(f, map[string]string{"a.jwt": "token-a", "b.secret": "secret-b"})
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := parse(data, dir, &Credentials{APIToken: "t"})
		if err != nil {
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("parse accepted a Spec that Validate refuses: %v", err)
		}
	})
}

// TestLoadFileErrorsNeverEchoInlineSecrets writes a secret inline, in each
// place a careless edit could put it, and checks that the error names the
// line but no part of the secret (no 4 characters of it in a row).
func TestLoadFileErrorsNeverEchoInlineSecrets(t *testing.T) {
	const secret = "Qx7vZk9Lm2Wp8Rt4"
	for _, tt := range []struct {
		name, yaml, line string
	}{
		{"value of an unknown field", "identities:\n  a:\n    client_id: x\n    client_secret: " + secret + "\n", "line 4"},
		{"key of an identity", "identities:\n  a:\n    " + secret + ": x\n", "line 3"},
		{"key of the file", secret + ": x\nidentities: {}\n", "line 1"},
		{"key with no value", "identities:\n  a:\n    api_token_file: a.jwt\n    " + secret + "\n", "line"},
		{"identities a string", "identities: " + secret + "\n", "line 1"},
		{"identity a string", "identities:\n  a: " + secret + "\n", "line 2"},
		{"field a list", "identities:\n  a:\n    client_id: [" + secret + "]\n", "line 3"},
		{"grant a string", "identities:\n  a:\n    api_token_file: a.jwt\ngrants:\n  alice: " + secret + "\n", "line 5"},
		{"quoted secret cut short", "identities:\n  a:\n    client_secret: \"" + secret + "\n", "decode"},
		{"alias of an unknown anchor", "identities:\n  a:\n    client_id: *" + secret + "\n", "decode"},
		{"tag", "identities:\n  a:\n    client_id: !" + secret + " x\n", "identity"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"identities.yaml": tt.yaml, "a.jwt": "token-a\n"})
			_, err := LoadFile(filepath.Join(dir, "identities.yaml"), nil)
			if err == nil {
				t.Fatal("LoadFile succeeded")
			}
			msg := err.Error()
			for i := 0; i+4 <= len(secret); i++ {
				if strings.Contains(msg, secret[i:i+4]) {
					t.Fatalf("error %q echoes %q of the secret", msg, secret[i:i+4])
				}
			}
			if !strings.Contains(msg, tt.line) {
				t.Errorf("error %q does not say %q", msg, tt.line)
			}
		})
	}
}
