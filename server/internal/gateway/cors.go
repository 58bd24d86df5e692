package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/cors"

	"github.com/radkit/radkit-access-facade/server/internal/requestid"
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
// lower case, and nothing else (no wildcard, path, query or user).
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
	if want := u.Scheme + "://" + strings.ToLower(u.Host); o != want {
		return fmt.Errorf("want exactly %q: an origin has no path, query, user or upper case", want)
	}
	return nil
}
