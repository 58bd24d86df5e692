package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The admin API, served under Config.AdminPrefix (JSON in and out; errors
// use the guide's error shape). route is a Route value, e.g.
// ?route=/oauth2/token.
//
//	GET    /counters                  {"calls": {route: n}, "cancelled": {route: n},
//	                                   "protocols": {"HTTP/2.0": n}, "connections": n}
//	PUT    /faults?route=R            body: a Fault or [Fault, ...]; queued as Script(R, ...)
//	DELETE /faults[?route=R]          ResetRouteFaults(R), or ResetFaults() without route
//	PUT    /failure-rate?route=R      body: {"rate": 0.25, "fault": Fault}
//	PUT    /latency[?route=R]         body: {"latency": "250ms"}; every route without route
//	POST   /revoke-tokens             RevokeAccessTokens()
//	PUT    /services                  body: Service; SetService
//	GET    /otps                      the OTPRecords remembered (the last MaxOTPs)
//	POST   /api-tokens                body: MintRequest; answers the APIToken minted
//	                                  (MintAPIToken), e.g. {"identity": "a@example.com",
//	                                  "claims": ["otp"], "lifetime": "-1h"} (already expired)
const (
	adminCounters     = "/counters"
	adminFaults       = "/faults"
	adminFailureRate  = "/failure-rate"
	adminLatency      = "/latency"
	adminRevokeTokens = "/revoke-tokens"
	adminServices     = "/services"
	adminOTPs         = "/otps"
	adminAPITokens    = "/api-tokens"
)

// Counters is the body of GET {AdminPrefix}/counters.
type Counters struct {
	Calls     map[Route]int64 `json:"calls"`
	Cancelled map[Route]int64 `json:"cancelled"`
	// Protocols counts API requests by protocol version ("HTTP/1.1",
	// "HTTP/2.0"); see Emulator.Protocols.
	Protocols map[string]int64 `json:"protocols"`
	// Connections counts the connections accepted (see
	// Emulator.Connections).
	Connections int64 `json:"connections"`
}

// FailureRate is the body of PUT {AdminPrefix}/failure-rate.
type FailureRate struct {
	Rate  float64 `json:"rate"`
	Fault Fault   `json:"fault"`
}

// LatencyRequest is the body of PUT {AdminPrefix}/latency.
type LatencyRequest struct {
	Latency string `json:"latency"`
}

// MintRequest is the body of POST {AdminPrefix}/api-tokens.
type MintRequest struct {
	Identity   string   `json:"identity"`
	AdminLevel int      `json:"admin_level"`
	Claims     []string `json:"claims"`
	// Lifetime is a Go duration from now; zero or negative mints a token
	// that has already expired.
	Lifetime string `json:"lifetime"`
}

// errAdmin is wrapped by admin request errors that are the caller's fault.
var errAdmin = errors.New("bad admin request")

func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request, path string) {
	rep, err := e.admin(r, path)
	if err != nil {
		e.write(w, errorReply(http.StatusBadRequest, err.Error()), BodyNone)
		return
	}
	e.log.Debug("emulator: admin", "method", r.Method, "path", path, "status", rep.status)
	e.write(w, rep, BodyNone)
}

func (e *Emulator) admin(r *http.Request, path string) (reply, error) {
	type endpoint struct{ path, method string }
	noContent := reply{status: http.StatusNoContent}
	switch (endpoint{path, r.Method}) {
	case endpoint{adminCounters, http.MethodGet}:
		c := Counters{Calls: make(map[Route]int64), Cancelled: make(map[Route]int64), Protocols: e.Protocols(), Connections: e.Connections()}
		for _, rt := range Routes() {
			c.Calls[rt], c.Cancelled[rt] = e.Calls(rt), e.Cancelled(rt)
		}
		return okReply(c), nil
	case endpoint{adminFaults, http.MethodPut}:
		route, err := adminRoute(r, true)
		if err != nil {
			return reply{}, err
		}
		faults, err := decodeFaults(r.Body)
		if err != nil {
			return reply{}, err
		}
		e.Script(route, faults...)
		return noContent, nil
	case endpoint{adminFaults, http.MethodDelete}:
		route, err := adminRoute(r, false)
		if err != nil {
			return reply{}, err
		}
		if route == "" {
			e.ResetFaults()
		} else {
			e.ResetRouteFaults(route)
		}
		return noContent, nil
	case endpoint{adminFailureRate, http.MethodPut}:
		route, err := adminRoute(r, true)
		if err != nil {
			return reply{}, err
		}
		var fr FailureRate
		if err := decodeStrict(r.Body, &fr); err != nil {
			return reply{}, err
		}
		if fr.Rate < 0 || fr.Rate > 1 {
			return reply{}, fmt.Errorf("%w: rate %v not in [0, 1]", errAdmin, fr.Rate)
		}
		e.SetFailureRate(route, fr.Rate, fr.Fault)
		return noContent, nil
	case endpoint{adminLatency, http.MethodPut}:
		route, err := adminRoute(r, false)
		if err != nil {
			return reply{}, err
		}
		var l LatencyRequest
		if err := decodeStrict(r.Body, &l); err != nil {
			return reply{}, err
		}
		d, err := time.ParseDuration(l.Latency)
		if err != nil || d < 0 {
			return reply{}, fmt.Errorf("%w: latency %q is not a non-negative duration", errAdmin, l.Latency)
		}
		routes := []Route{route}
		if route == "" {
			routes = Routes()
		}
		for _, rt := range routes {
			e.SetLatency(rt, d)
		}
		return noContent, nil
	case endpoint{adminRevokeTokens, http.MethodPost}:
		e.RevokeAccessTokens()
		return noContent, nil
	case endpoint{adminServices, http.MethodPut}:
		var s Service
		if err := decodeStrict(r.Body, &s); err != nil {
			return reply{}, err
		}
		if s.ID == "" {
			return reply{}, fmt.Errorf("%w: empty service_id", errAdmin)
		}
		e.SetService(s)
		return noContent, nil
	case endpoint{adminOTPs, http.MethodGet}:
		return okReply(e.OTPs()), nil
	case endpoint{adminAPITokens, http.MethodPost}:
		var m MintRequest
		if err := decodeStrict(r.Body, &m); err != nil {
			return reply{}, err
		}
		d, err := time.ParseDuration(m.Lifetime)
		if err != nil {
			return reply{}, fmt.Errorf("%w: lifetime %q is not a duration", errAdmin, m.Lifetime)
		}
		t, err := e.MintAPIToken(m.Identity, m.AdminLevel, m.Claims, d)
		if err != nil {
			return reply{}, fmt.Errorf("%w: %w", errAdmin, err)
		}
		return okReply(t), nil
	}
	return errorReply(http.StatusNotFound, "Not Found"), nil
}

// adminRoute reads and checks the route query parameter.
func adminRoute(r *http.Request, required bool) (Route, error) {
	route := Route(r.URL.Query().Get("route"))
	switch {
	case route == "" && !required:
		return "", nil
	case !route.Valid():
		return "", fmt.Errorf("%w: route %q: want one of %v", errAdmin, route, Routes())
	}
	return route, nil
}

// decodeFaults reads one Fault or a JSON array of them.
func decodeFaults(r io.Reader) ([]Fault, error) {
	var raw json.RawMessage
	if err := decodeStrict(r, &raw); err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		var faults []Fault
		if err := json.Unmarshal(raw, &faults); err != nil {
			return nil, fmt.Errorf("%w: %w", errAdmin, err)
		}
		return faults, nil
	}
	var f Fault
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", errAdmin, err)
	}
	return []Fault{f}, nil
}

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: decode body: %w", errAdmin, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after JSON value", errAdmin)
	}
	return nil
}
