package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/radkit/radkit-access-facade/server/facade"
)

// TestUpstreamConnectionFlags checks the flags of the upstream connection:
// their values reach facade.Config, the bound has its default, and the
// refusals name the flag or variable the user set.
func TestUpstreamConnectionFlags(t *testing.T) {
	creds := map[string]string{"RADKIT_ACCESS_CLIENT_ID": "client-1", "RADKIT_ACCESS_CLIENT_SECRET": testClientSecret}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range creds {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")

	c, err := parseConfig([]string{"--upstream-url", "https://radkit.example.com"}, envOf(creds), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.facade.UpstreamMaxInFlight != facade.DefaultUpstreamMaxInFlight || c.facade.UpstreamProxy == nil || c.facade.UpstreamCAFile != "" {
		t.Errorf("defaults: max in flight %d, proxy set %t, CA file %q", c.facade.UpstreamMaxInFlight, c.facade.UpstreamProxy != nil, c.facade.UpstreamCAFile)
	}

	c, err = parseConfig([]string{"--upstream-url", "http://radkit.internal:8080", "--insecure-upstream-http", "--upstream-max-in-flight", "32"},
		envOf(with(map[string]string{"RADKIT_FACADE_UPSTREAM_CA_FILE": caFile})), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.facade.InsecureUpstreamHTTP || c.facade.UpstreamMaxInFlight != 32 || c.facade.UpstreamCAFile != caFile {
		t.Errorf("parsed %+v", c.facade)
	}

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"clear text to a remote host", []string{"--upstream-url", "http://radkit.internal"}, nil,
			"--upstream-url is plain http:// to a host other than loopback: the credentials would travel in clear; use https://, or set --insecure-upstream-http (or RADKIT_FACADE_INSECURE_UPSTREAM_HTTP)"},
		{"negative bound", []string{"--upstream-url", "https://radkit.example.com"}, map[string]string{"RADKIT_FACADE_UPSTREAM_MAX_IN_FLIGHT": "-1"},
			`RADKIT_FACADE_UPSTREAM_MAX_IN_FLIGHT="-1": want an integer of at least 1`},
		{"zero bound, which would mean the default", []string{"--upstream-url", "https://radkit.example.com", "--upstream-max-in-flight", "0"}, nil,
			`invalid value "0" for flag -upstream-max-in-flight: want an integer of at least 1`},
		{"bad bound", []string{"--upstream-url", "https://radkit.example.com", "--upstream-max-in-flight", "many"}, nil, "want an integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, envOf(with(tc.env)), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseConfig = %v, want an error containing %q", err, tc.want)
			}
			assertNoSecrets(t, err.Error())
		})
	}
	// Loopback may use plain HTTP without the flag: the emulator.
	if _, err := parseConfig([]string{"--upstream-url", "http://127.0.0.1:8089"}, envOf(creds), io.Discard); err != nil {
		t.Errorf("plain http to loopback: %v", err)
	}
}

// TestUpstreamEnvNames checks the upstream's variables under the
// RADKIT_FACADE_ prefix, and that their former names are refused with a
// message naming the new one, alone or beside it, unless the flag that
// hides the variable is given.
func TestUpstreamEnvNames(t *testing.T) {
	const url, caFile = "https://radkit.example.com", "/etc/radkit/ca.pem"
	token := "RADKIT_ACCESS_API_TOKEN"
	runFlagCases(t, []flagCase[string]{
		{"new name", nil, map[string]string{token: testAPIToken, "RADKIT_FACADE_UPSTREAM_URL": url}, url, ""},
		{"former name", nil, map[string]string{token: testAPIToken, "RADKIT_ACCESS_URL": url},
			"", "RADKIT_ACCESS_URL is no longer read: rename it RADKIT_FACADE_UPSTREAM_URL"},
		{"former name beside the new one", nil, map[string]string{token: testAPIToken, "RADKIT_ACCESS_URL": url, "RADKIT_FACADE_UPSTREAM_URL": url},
			"", "RADKIT_ACCESS_URL is no longer read: rename it RADKIT_FACADE_UPSTREAM_URL"},
		{"former name hidden by the flag", []string{"--upstream-url", url}, map[string]string{token: testAPIToken, "RADKIT_ACCESS_URL": "https://old.example.com"}, url, ""},
		{"former name hidden by --emulator", []string{"--emulator"}, map[string]string{"RADKIT_ACCESS_URL": url}, "", ""},
	}, func(c config) string { return c.facade.UpstreamURL })
	runFlagCases(t, []flagCase[string]{
		{"CA file, new name", []string{"--upstream-url", url}, map[string]string{token: testAPIToken, "RADKIT_FACADE_UPSTREAM_CA_FILE": caFile}, caFile, ""},
		{"CA file, former name", []string{"--upstream-url", url}, map[string]string{token: testAPIToken, "RADKIT_ACCESS_CA_FILE": caFile},
			"", "RADKIT_ACCESS_CA_FILE is no longer read: rename it RADKIT_FACADE_UPSTREAM_CA_FILE"},
		{"CA file, former name hidden by the flag", []string{"--upstream-url", url, "--upstream-ca-file", caFile},
			map[string]string{token: testAPIToken, "RADKIT_ACCESS_CA_FILE": "/old/ca.pem"}, caFile, ""},
	}, func(c config) string { return c.facade.UpstreamCAFile })
}
