package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpproxy"
)

// proxyFromEnv is the upstream proxy that the environment names, read
// through getenv as http.ProxyFromEnvironment reads it from the process
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY and their lower-case forms; requests
// to localhost and loopback addresses never use a proxy). It is read from
// getenv rather than from the process, so that tests can run the whole
// command with an environment of their own.
//
// A value that does not parse is an error naming the variable:
// httpproxy drops such a value without a word, and the facade would then
// connect directly, past the egress proxy. The error never shows a proxy
// URL's value, which may hold a password.
func proxyFromEnv(getenv func(string) string) (func(*url.URL) (*url.URL, error), error) {
	either := func(upper, lower string) (name, value string) {
		if v := getenv(upper); v != "" {
			return upper, v
		}
		return lower, getenv(lower)
	}
	httpName, httpProxy := either("HTTP_PROXY", "http_proxy")
	httpsName, httpsProxy := either("HTTPS_PROXY", "https_proxy")
	noName, noProxy := either("NO_PROXY", "no_proxy")
	if err := checkProxyURL(httpName, httpProxy); err != nil {
		return nil, err
	}
	if err := checkProxyURL(httpsName, httpsProxy); err != nil {
		return nil, err
	}
	if err := checkNoProxy(noName, noProxy); err != nil {
		return nil, err
	}
	cfg := httpproxy.Config{
		HTTPProxy:  httpProxy,
		HTTPSProxy: httpsProxy,
		NoProxy:    noProxy,
		// As net/http: under CGI, HTTP_PROXY may come from a request header.
		CGI: getenv("REQUEST_METHOD") != "",
	}
	return cfg.ProxyFunc(), nil
}

// checkProxyURL reports whether value, the proxy URL of the variable name,
// is one that httpproxy would use: a URL (or a bare host:port, taken as
// http://) with a host, a scheme Go can proxy through and a valid port.
func checkProxyURL(name, value string) error {
	if value == "" {
		return nil
	}
	const want = "want scheme://[user:password@]host[:port] with scheme http, https, socks5 or socks5h; the value is not shown, as it may hold a password"
	u, err := url.Parse(value)
	if !strings.Contains(value, "://") {
		// As httpproxy: a value without a scheme means http://.
		u, err = url.Parse("http://" + value)
	}
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("%s is not a valid proxy URL (%s)", name, want)
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return fmt.Errorf("%s: proxy scheme %q is not supported (%s)", name, u.Scheme, want)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s: proxy port is not a number from 1 to 65535 (%s)", name, want)
		}
	}
	return nil
}

// checkNoProxy reports whether value, the NO_PROXY list of the variable
// name, holds only entries that httpproxy reads as intended: host names,
// domains (.example.com), IP addresses, CIDR ranges, each with an optional
// port, or "*". An entry it would silently read as a host name that
// matches nothing (a CIDR range out of bounds, a URL) is an error.
func checkNoProxy(name, value string) error {
	for _, e := range strings.Split(value, ",") {
		e = strings.TrimSpace(e)
		if e == "" || e == "*" {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("%s: entry %q %s (want host, .domain, IP or CIDR range, with an optional :port, comma-separated)", name, e, why)
		}
		if strings.Contains(e, "/") {
			if _, _, err := net.ParseCIDR(e); err != nil {
				return bad("is not a valid CIDR range")
			}
			continue
		}
		host := e
		if h, p, err := net.SplitHostPort(e); err == nil {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return bad("has a port that is not a number from 1 to 65535")
			}
			host = h
		}
		if strings.ContainsAny(host, " \t@?#%") || host == "" {
			return bad("is not a host name or address")
		}
	}
	return nil
}
