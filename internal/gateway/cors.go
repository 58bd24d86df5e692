package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rs/cors"
	"golang.org/x/net/idna"

	"github.com/radkit/radkit-access-facade/internal/requestid"
)

// corsMaxAge is how long, in seconds, a browser may cache a preflight
// answer.
const corsMaxAge = 600

// withCORS answers cross-origin requests from exactly the given origins,
// for browser-based tools: preflights are answered here (204, without
// reaching the mux), and answers to allowed origins carry the CORS headers
// and Vary: Origin. Requests from any other origin get no CORS headers, so
// the browser withholds the answer. Credentials (cookies, client
// certificates) are not allowed: callers send their key in Authorization,
// an allowed request header. With no origins, next is returned as is.
func withCORS(origins []string, next http.Handler) (http.Handler, error) {
	if len(origins) == 0 {
		return next, nil
	}
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		if err := CheckOrigin(o); err != nil {
			return nil, fmt.Errorf("gateway: CORS allowed origin %q: %w", o, err)
		}
		allowed[o] = true
	}
	c := cors.New(cors.Options{
		// A function, not AllowedOrigins, so that nothing in the list is
		// read as a pattern ("*", "https://*.example.com").
		AllowOriginFunc: func(origin string) bool { return allowed[origin] },
		AllowedMethods:  []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:  []string{"Authorization", "Content-Type", "Idempotency-Key", requestid.Key},
		ExposedHeaders:  []string{requestid.Key, "Retry-After", "WWW-Authenticate"},
		MaxAge:          corsMaxAge,
	})
	return c.Handler(next), nil
}

// CheckOrigin accepts an exact web origin as browsers send it in the
// Origin header: scheme http or https, a host and an optional port, in
// lower case, and nothing else (no wildcard, path, query or user). Since
// the header never carries a scheme's default port (443, 80) nor a host in
// Unicode (an IDN goes as its punycode A-label, "xn--..."), an origin
// written either way could never match a browser's and is refused with the
// spelling that would.
func CheckOrigin(o string) error {
	if strings.Contains(o, "*") {
		return fmt.Errorf("wildcards are not allowed: list each origin exactly")
	}
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want scheme://host[:port] with scheme http or https")
	}
	want, err := browserOrigin(u)
	if err != nil {
		return err
	}
	if o != want {
		return fmt.Errorf("want exactly %q, as browsers send it: an origin has no path, query, user, upper case or default port, and an IDN host is in punycode", want)
	}
	return nil
}

// browserOrigin is the Origin header a browser sends for pages of u:
// scheme, host in lower-case ASCII (IDNA, UTS #46) and the port unless it
// is the scheme's default.
func browserOrigin(u *url.URL) (string, error) {
	host := u.Hostname()
	if !strings.Contains(host, ":") { // an IPv6 literal is already ASCII
		// As browsers map a host (UTS #46, non-transitional), and
		// refusing empty or over-long labels, which they do not send.
		profile := idna.New(idna.MapForLookup(), idna.Transitional(false), idna.VerifyDNSLength(true), idna.BidiRule())
		ascii, err := profile.ToASCII(host)
		if err != nil {
			return "", fmt.Errorf("host %q is not a valid domain name: %w", host, err)
		}
		host = ascii
	} else {
		host = "[" + strings.ToLower(host) + "]"
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return "", fmt.Errorf("port %q: want 1 to 65535", port)
		}
		port = strconv.FormatUint(n, 10)
	}
	if u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}
