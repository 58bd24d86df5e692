package main

import (
	"net/url"

	"golang.org/x/net/http/httpproxy"
)

// proxyFromEnv is the upstream proxy that the environment names, read
// through getenv as http.ProxyFromEnvironment reads it from the process
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY and their lower-case forms; requests
// to localhost and loopback addresses never use a proxy). It is read from
// getenv rather than from the process, so that tests can run the whole
// command with an environment of their own.
func proxyFromEnv(getenv func(string) string) func(*url.URL) (*url.URL, error) {
	either := func(upper, lower string) string {
		if v := getenv(upper); v != "" {
			return v
		}
		return getenv(lower)
	}
	cfg := httpproxy.Config{
		HTTPProxy:  either("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: either("HTTPS_PROXY", "https_proxy"),
		NoProxy:    either("NO_PROXY", "no_proxy"),
		// As net/http: under CGI, HTTP_PROXY may come from a request header.
		CGI: getenv("REQUEST_METHOD") != "",
	}
	return cfg.ProxyFunc()
}
