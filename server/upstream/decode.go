package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// readBody reads at most limit bytes of r. A longer body is an
// ErrMalformedResponse; a failed read returns the read error.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: body exceeds %d bytes", ErrMalformedResponse, limit)
	}
	return b, nil
}

// isJSONSpace reports whether c is JSON insignificant white space.
func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// stripTrailingCommas removes each comma that stands, outside strings, right
// after a value and before a closing '}' or ']' (white space aside), as in
// the guide's examples: {"otp": "x",}. Nothing else changes, so a body that
// is invalid for any other reason stays invalid. b itself is returned when
// there is nothing to remove.
func stripTrailingCommas(b []byte) []byte {
	var out []byte // allocated on the first removal
	inString, escaped := false, false
	var last byte // last significant byte outside strings ('"' for a string's end)
	start := 0    // b[start:i] is yet to be copied to out
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				last = '"'
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
		case isJSONSpace(c):
			continue
		case c == ',' && endsValue(last):
			j := i + 1
			for j < len(b) && isJSONSpace(b[j]) {
				j++
			}
			if j < len(b) && (b[j] == '}' || b[j] == ']') {
				if out == nil {
					out = make([]byte, 0, len(b))
				}
				out = append(out, b[start:i]...)
				start = i + 1
				// last stays: the comma is gone.
				continue
			}
		}
		last = c
	}
	if out == nil {
		return b
	}
	return append(out, b[start:]...)
}

// endsValue reports whether a significant byte can be the last one of a JSON
// value: a string's closing quote, a closing bracket, the end of a number or
// of true, false, null.
func endsValue(c byte) bool {
	switch {
	case c == '"', c == '}', c == ']', c == 'e', c == 'l':
		return true
	case c >= '0' && c <= '9':
		return true
	}
	return false
}

// unmarshal decodes a JSON body, tolerating trailing commas, into v. Its
// errors wrap ErrMalformedResponse and never quote the body.
func unmarshal(body []byte, v any) error {
	if err := json.Unmarshal(stripTrailingCommas(body), v); err != nil {
		return fmt.Errorf("%w: %s", ErrMalformedResponse, describeJSONError(err))
	}
	return nil
}

// describeJSONError describes a decoding failure without the body's content.
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: JSON %s where %s expected", te.Field, te.Value, te.Type)
		}
		return fmt.Sprintf("JSON %s where %s expected", te.Value, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return "invalid JSON"
}

// decodeOTP decodes the answer to an OTP request: a non-empty "otp" string.
func decodeOTP(body []byte) (string, error) {
	var v struct {
		OTP *string `json:"otp"`
	}
	if err := unmarshal(body, &v); err != nil {
		return "", err
	}
	if v.OTP == nil || *v.OTP == "" {
		return "", fmt.Errorf("%w: missing or empty \"otp\"", ErrMalformedResponse)
	}
	return *v.OTP, nil
}

// decodeStatus decodes a service status; every field is required.
func decodeStatus(body []byte) (ServiceStatus, error) {
	var v struct {
		ServiceID *string `json:"service_id"`
		Active    *bool   `json:"active"`
		Online    *bool   `json:"online"`
	}
	if err := unmarshal(body, &v); err != nil {
		return ServiceStatus{}, err
	}
	var missing []string
	if v.ServiceID == nil || *v.ServiceID == "" {
		missing = append(missing, "service_id")
	}
	if v.Active == nil {
		missing = append(missing, "active")
	}
	if v.Online == nil {
		missing = append(missing, "online")
	}
	if len(missing) > 0 {
		return ServiceStatus{}, fmt.Errorf("%w: missing %s", ErrMalformedResponse, strings.Join(missing, ", "))
	}
	return ServiceStatus{ServiceID: *v.ServiceID, Active: *v.Active, Online: *v.Online}, nil
}

// decodeErrorBody extracts "details" and "retry" from an error body. A body
// that is not the documented shape gives http.StatusText(status). RFC 6749
// token errors ("error", "error_description") are understood too.
func decodeErrorBody(status int, body []byte) (details string, retry bool) {
	var v struct {
		Details          *string `json:"details"`
		Retry            *bool   `json:"retry"`
		Error            *string `json:"error"`
		ErrorDescription *string `json:"error_description"`
	}
	if len(bytes.TrimSpace(body)) > 0 && unmarshal(body, &v) == nil {
		if v.Retry != nil {
			retry = *v.Retry
		}
		for _, s := range []*string{v.Details, v.ErrorDescription, v.Error} {
			if s != nil && *s != "" {
				return *s, retry
			}
		}
	}
	if text := http.StatusText(status); text != "" {
		return text, retry
	}
	return fmt.Sprintf("HTTP status %d", status), retry
}

// Bounds of a token lifetime, so that durations cannot overflow.
const (
	defaultTokenLifetime = 5 * time.Minute
	maxTokenLifetime     = 365 * 24 * time.Hour
)

// tokenResponse is what the client reads of a token endpoint's answer
// (both credential modes).
type tokenResponse struct {
	AccessToken      string
	TokenType        string
	ExpiresIn        time.Duration // 0 when missing or not positive
	RefreshRemaining time.Duration
	Identity         string
	AdminLevel       int
}

// decodeAPIToken decodes the API-token endpoint's answer into the
// *oauth2.Token that x/oauth2 makes of a client-credentials answer (the
// JSON object as its extra fields), so that readToken reads both modes.
// Unlike x/oauth2 it tolerates trailing commas, as every body this client
// decodes itself does.
func decodeAPIToken(body []byte) (*oauth2.Token, error) {
	var raw map[string]any
	if err := unmarshal(body, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: token response is not a JSON object", ErrMalformedResponse)
	}
	access, ok := raw["access_token"].(string)
	if !ok && raw["access_token"] != nil {
		return nil, fmt.Errorf("%w: \"access_token\" is not a string", ErrMalformedResponse)
	}
	tokenType, ok := raw["token_type"].(string)
	if !ok && raw["token_type"] != nil {
		return nil, fmt.Errorf("%w: \"token_type\" is not a string", ErrMalformedResponse)
	}
	return (&oauth2.Token{AccessToken: access, TokenType: tokenType}).WithExtra(raw), nil
}

// readToken reads a token response. access_token is required; the other
// fields are optional but must have the right type. "endpoint_id" is
// accepted for "identity", as the SDK names it. The upstream's own fields
// are x/oauth2's "extra" fields.
func readToken(ot *oauth2.Token) (tokenResponse, error) {
	var t tokenResponse
	if ot.AccessToken == "" {
		return t, fmt.Errorf("%w: missing \"access_token\"", ErrMalformedResponse)
	}
	t.AccessToken = ot.AccessToken
	t.TokenType = "Bearer"
	if ot.TokenType != "" {
		t.TokenType = ot.TokenType
	}
	var err error
	if t.ExpiresIn, err = seconds(ot, "expires_in"); err != nil {
		return tokenResponse{}, err
	}
	if t.RefreshRemaining, err = seconds(ot, "refresh_remaining_lifetime"); err != nil {
		return tokenResponse{}, err
	}
	identity, err := extraString(ot, "identity")
	if err != nil {
		return tokenResponse{}, err
	}
	if identity == "" {
		if identity, err = extraString(ot, "endpoint_id"); err != nil {
			return tokenResponse{}, err
		}
	}
	t.Identity = identity
	if v := ot.Extra("admin_level"); v != nil {
		f, ok := number(v)
		if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			return tokenResponse{}, fmt.Errorf("%w: \"admin_level\" is not an integer", ErrMalformedResponse)
		}
		t.AdminLevel = int(f)
	}
	return t, nil
}

// extraString returns the string field key of ot's response, "" when it is
// absent or null.
func extraString(ot *oauth2.Token, key string) (string, error) {
	switch v := ot.Extra(key).(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("%w: %q is not a string", ErrMalformedResponse, key)
}

// number converts a JSON number, as x/oauth2 keeps it (float64 from a JSON
// body, int64 or float64 from a form body, or a numeric string), to a
// finite float64.
func number(v any) (float64, bool) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case int64:
		f = float64(v)
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// seconds converts the field key of ot's response, a number of seconds, to
// a duration clamped to [0, maxTokenLifetime].
func seconds(ot *oauth2.Token, key string) (time.Duration, error) {
	v := ot.Extra(key)
	if v == nil {
		return 0, nil
	}
	f, ok := number(v)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a number", ErrMalformedResponse, key)
	}
	if f <= 0 {
		return 0, nil
	}
	return time.Duration(math.Min(f, maxTokenLifetime.Seconds()) * float64(time.Second)), nil
}

// discoveryDoc is the part of the OpenID configuration that we use.
type discoveryDoc struct {
	Issuer             string
	TokenEndpoint      string
	RevocationEndpoint string
}

// decodeDiscovery decodes an OpenID configuration; "issuer" is required.
func decodeDiscovery(body []byte) (discoveryDoc, error) {
	var v struct {
		Issuer             *string `json:"issuer"`
		TokenEndpoint      *string `json:"token_endpoint"`
		RevocationEndpoint *string `json:"revocation_endpoint"`
	}
	if err := unmarshal(body, &v); err != nil {
		return discoveryDoc{}, err
	}
	if v.Issuer == nil || *v.Issuer == "" {
		return discoveryDoc{}, fmt.Errorf("%w: discovery document has no \"issuer\"", ErrMalformedResponse)
	}
	d := discoveryDoc{Issuer: *v.Issuer}
	if v.TokenEndpoint != nil {
		d.TokenEndpoint = *v.TokenEndpoint
	}
	if v.RevocationEndpoint != nil {
		d.RevocationEndpoint = *v.RevocationEndpoint
	}
	return d, nil
}
