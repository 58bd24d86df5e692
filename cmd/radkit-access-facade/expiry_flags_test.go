package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestCredentialFilesAndExpiry: secret files reach facade.Config by name
// too, so that the facade reads them again on reload, and the client
// secret's expiry is read from the environment as RFC 3339.
func TestCredentialFilesAndExpiry(t *testing.T) {
	secretFile := writeSecretFile(t, "client-secret", testClientSecret+"\n")
	tokenFile := writeSecretFile(t, "api-token", testAPIToken+"\n")
	env := map[string]string{
		"RADKIT_ACCESS_CLIENT_ID":                "client-1",
		"RADKIT_ACCESS_CLIENT_SECRET_FILE":       secretFile,
		"RADKIT_ACCESS_API_TOKEN_FILE":           tokenFile,
		"RADKIT_ACCESS_CLIENT_SECRET_EXPIRES_AT": "2027-06-30T00:00:00Z",
	}
	c, err := parseConfig([]string{"--upstream-url", "https://radkit.example.com"}, envOf(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := c.facade
	if f.ClientSecretFile != secretFile || f.APITokenFile != tokenFile || f.ClientSecret != testClientSecret || f.APIToken != testAPIToken {
		t.Errorf("files %q %q, values read %t %t", f.ClientSecretFile, f.APITokenFile, f.ClientSecret == testClientSecret, f.APIToken == testAPIToken)
	}
	if want := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC); !f.ClientSecretExpiresAt.Equal(want) {
		t.Errorf("ClientSecretExpiresAt = %v, want %v", f.ClientSecretExpiresAt, want)
	}

	// From the variable itself, there is no file to read again.
	c, err = parseConfig([]string{"--upstream-url", "https://radkit.example.com"},
		envOf(map[string]string{"RADKIT_ACCESS_CLIENT_ID": "client-1", "RADKIT_ACCESS_CLIENT_SECRET": testClientSecret}), io.Discard)
	if err != nil || c.facade.ClientSecretFile != "" {
		t.Errorf("secret from the variable: file %q, err %v", c.facade.ClientSecretFile, err)
	}

	env["RADKIT_ACCESS_CLIENT_SECRET_EXPIRES_AT"] = "next tuesday"
	_, err = parseConfig([]string{"--upstream-url", "https://radkit.example.com"}, envOf(env), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "RADKIT_ACCESS_CLIENT_SECRET_EXPIRES_AT") {
		t.Errorf("malformed expiry: %v, want an error naming the variable", err)
	}
}
