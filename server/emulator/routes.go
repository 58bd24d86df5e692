package emulator

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// reply is a response before it is written, so that body faults can mangle
// any route's answer the same way.
type reply struct {
	status int
	body   any // nil: no body (204)
	header http.Header
}

// errorBody is the guide's error shape (§4.1, §7).
type errorBody struct {
	Success bool   `json:"success"`
	Details string `json:"details"`
	Retry   bool   `json:"retry"`
}

func errorReply(status int, details string) reply {
	return reply{status: status, body: errorBody{Success: false, Details: details}}
}

func okReply(body any) reply { return reply{status: http.StatusOK, body: body} }

// Error details, worded as in the guide where it gives them.
const (
	detailInvalidCredentials = "Invalid credentials"
	detailUnsupportedGrant   = "unsupported grant_type"
	detailInvalidToken       = "Invalid token"
	detailForbidden          = "Forbidden"
	detailUnknownService     = "Unknown Service ID"
	detailTokenUnknown       = "Token unknown or expired"
	detailInvalidJSON        = "Invalid JSON body"
	detailContentType        = "Content-Type must be application/json"
	detailBodyTooLarge       = "Request body too large"
)

// handle runs the route's handler.
func (e *Emulator) handle(route Route, r *http.Request) reply {
	switch route {
	case RouteDiscovery:
		return e.handleDiscovery(r)
	case RouteToken:
		return e.handleToken(r)
	case RouteAPIToken:
		return e.handleAPIToken(r)
	case RouteKeys:
		return okReply(jwks{Keys: []jwk{e.signer.jwk}})
	case RouteUserInfo:
		return e.handleUserInfo(r)
	case RouteRevoke:
		return e.handleRevoke(r)
	case RouteOTP:
		return e.handleOTP(r)
	case RouteStatus:
		return e.handleStatus(r)
	}
	return errorReply(http.StatusNotFound, "Not Found")
}

// issuerFor is the configured issuer, or the request's scheme and host.
func (e *Emulator) issuerFor(r *http.Request) string {
	if e.issuer != "" {
		return e.issuer
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type discoveryDoc struct {
	Issuer             string `json:"issuer"`
	JWKSURI            string `json:"jwks_uri"`
	TokenEndpoint      string `json:"token_endpoint"`
	RevocationEndpoint string `json:"revocation_endpoint"`
	UserinfoEndpoint   string `json:"userinfo_endpoint"`
}

func (e *Emulator) handleDiscovery(r *http.Request) reply {
	iss := e.issuerFor(r)
	return okReply(discoveryDoc{
		Issuer:             iss,
		JWKSURI:            iss + string(RouteKeys),
		TokenEndpoint:      iss + string(RouteToken),
		RevocationEndpoint: iss + string(RouteRevoke),
		UserinfoEndpoint:   iss + string(RouteUserInfo),
	})
}

// authClient checks HTTP Basic client credentials. Like RFC 6749 §2.3.1 it
// also accepts ID and secret that were form-urlencoded before encoding.
func (e *Emulator) authClient(r *http.Request) (Client, bool) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return Client{}, false
	}
	if c, ok := e.matchClient(id, secret); ok {
		return c, true
	}
	uid, err1 := url.QueryUnescape(id)
	usecret, err2 := url.QueryUnescape(secret)
	if err1 != nil || err2 != nil {
		return Client{}, false
	}
	return e.matchClient(uid, usecret)
}

func (e *Emulator) matchClient(id, secret string) (Client, bool) {
	e.mu.Lock()
	c, ok := e.clients[id]
	e.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return Client{}, false
	}
	return c, true
}

func unauthorized(details, scheme string) reply {
	rep := errorReply(http.StatusUnauthorized, details)
	rep.header = http.Header{"Www-Authenticate": {scheme + ` realm="radkit-access"`}}
	return rep
}

// handleToken serves the client-credentials grant. Client authentication is
// checked first, then grant_type (query or form body).
func (e *Emulator) handleToken(r *http.Request) reply {
	c, ok := e.authClient(r)
	if !ok {
		return unauthorized(detailInvalidCredentials, "Basic")
	}
	if err := r.ParseForm(); err != nil {
		if rep, ok := tooLarge(err); ok {
			return rep
		}
		return errorReply(http.StatusBadRequest, "Invalid form body")
	}
	if r.Form.Get("grant_type") != "client_credentials" {
		return errorReply(http.StatusBadRequest, detailUnsupportedGrant)
	}
	return e.tokenReply(r, principal{Identity: c.Identity, AdminLevel: c.AdminLevel, Claims: cloneStrings(c.Claims)})
}

// handleAPIToken exchanges "Authorization: JWT <api token>" for tokens.
func (e *Emulator) handleAPIToken(r *http.Request) reply {
	raw, ok := authToken(r, "JWT")
	if !ok {
		return unauthorized(detailInvalidCredentials, "JWT")
	}
	e.mu.Lock()
	t, ok := e.apiTokens[raw]
	e.mu.Unlock()
	if !ok || t.Revoked || (!t.ExpiresAt.IsZero() && !e.now().Before(t.ExpiresAt)) {
		return unauthorized(detailInvalidCredentials, "JWT")
	}
	return e.tokenReply(r, principal{Identity: t.Identity, AdminLevel: t.AdminLevel, Claims: cloneStrings(t.Claims)})
}

func (e *Emulator) tokenReply(r *http.Request, p principal) reply {
	resp, err := e.issue(e.issuerFor(r), p)
	if err != nil {
		e.log.Error("emulator: issue token", "err", err)
		return errorReply(http.StatusInternalServerError, "Internal Server Error")
	}
	rep := okReply(resp)
	rep.header = http.Header{"Cache-Control": {"no-store"}}
	return rep
}

// authToken returns the credential of an "Authorization: <scheme> <cred>"
// header; the scheme is case-insensitive.
func authToken(r *http.Request, scheme string) (string, bool) {
	h := r.Header.Get("Authorization")
	s, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(s, scheme) {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// bearer authenticates the request's access token and, if claim is not
// empty, checks that its identity holds claim.
func (e *Emulator) bearer(r *http.Request, claim string) (principal, *reply) {
	raw, ok := authToken(r, "Bearer")
	if !ok {
		rep := unauthorized(detailInvalidToken, "Bearer")
		return principal{}, &rep
	}
	_, rec, err := e.lookupAccess(raw)
	if err != nil {
		rep := unauthorized(detailInvalidToken, "Bearer")
		return principal{}, &rep
	}
	if claim != "" && !hasClaim(rec.Claims, claim) {
		rep := errorReply(http.StatusForbidden, detailForbidden)
		return principal{}, &rep
	}
	return rec.principal, nil
}

type userInfo struct {
	Sub        string `json:"sub"`
	Identity   string `json:"identity"`
	Email      string `json:"email"`
	AdminLevel int    `json:"admin_level"`
}

func (e *Emulator) handleUserInfo(r *http.Request) reply {
	p, rep := e.bearer(r, "")
	if rep != nil {
		return *rep
	}
	return okReply(userInfo{Sub: p.Identity, Identity: p.Identity, Email: p.Identity, AdminLevel: p.AdminLevel})
}

// handleRevoke revokes the access token in the token query parameter (the
// guide documents only the query parameter, so a form body is ignored).
func (e *Emulator) handleRevoke(r *http.Request) reply {
	if _, ok := e.authClient(r); !ok {
		return unauthorized(detailInvalidCredentials, "Basic")
	}
	tok := r.URL.Query().Get("token")
	if tok == "" || !e.revokeAccess(tok) {
		return errorReply(http.StatusBadRequest, detailTokenUnknown)
	}
	return reply{status: http.StatusNoContent}
}

// OTPRecord is what the emulator remembers about an OTP it issued.
type OTPRecord struct {
	OTP         string    `json:"otp"`
	Owner       string    `json:"owner"`
	EndpointID  string    `json:"endpoint_id"`
	Description string    `json:"description"`
	Identity    string    `json:"identity"` // who asked for it
	CreatedAt   time.Time `json:"created_at"`
	seq         uint64
}

type otpRequest struct {
	Owner       *string `json:"owner"`
	EndpointID  *string `json:"endpoint_id"`
	Description *string `json:"description"`
}

type otpResponse struct {
	OTP string `json:"otp"`
}

// handleOTP issues an OTP. owner and endpoint_id are required and must not
// be blank; description is optional (the guide only shows owner's error).
func (e *Emulator) handleOTP(r *http.Request) reply {
	p, rep := e.bearer(r, ClaimOTP)
	if rep != nil {
		return *rep
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errorReply(http.StatusBadRequest, detailContentType)
	}
	var req otpRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		if rep, ok := tooLarge(err); ok {
			return rep
		}
		return errorReply(http.StatusBadRequest, detailInvalidJSON)
	}
	if _, err := dec.Token(); err == nil {
		return errorReply(http.StatusBadRequest, detailInvalidJSON) // trailing data
	} else if rep, ok := tooLarge(err); ok {
		return rep
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"owner", req.Owner}, {"endpoint_id", req.EndpointID}} {
		if f.v == nil || strings.TrimSpace(*f.v) == "" {
			return errorReply(http.StatusBadRequest, fmt.Sprintf("Missing required field '%s'", f.name))
		}
	}
	rec := OTPRecord{Owner: *req.Owner, EndpointID: *req.EndpointID, Identity: p.Identity, CreatedAt: e.now()}
	if req.Description != nil {
		rec.Description = *req.Description
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		otp, err := newOTP()
		if err != nil {
			e.log.Error("emulator: generate OTP", "err", err)
			return errorReply(http.StatusInternalServerError, "Internal Server Error")
		}
		if _, dup := e.otps[otp]; dup {
			continue
		}
		rec.OTP = otp
		rec.seq = e.otpSeq
		e.otpSeq++
		e.rememberOTP(rec)
		return okReply(otpResponse{OTP: otp})
	}
}

// rememberOTP records rec, forgetting the oldest OTP when MaxOTPs are
// remembered already. e.mu is held.
func (e *Emulator) rememberOTP(rec OTPRecord) {
	e.otps[rec.OTP] = rec
	if len(e.otpRing) < e.maxOTPs {
		e.otpRing = append(e.otpRing, rec.OTP)
		return
	}
	delete(e.otps, e.otpRing[e.otpNext])
	e.otpRing[e.otpNext] = rec.OTP
	e.otpNext = (e.otpNext + 1) % e.maxOTPs
}

// newOTP returns an OTP shaped like the guide's "abcd-1234-efgh-5678".
func newOTP() (string, error) {
	const letters, digits = "abcdefghijklmnopqrstuvwxyz", "0123456789"
	var b strings.Builder
	for group, alphabet := range []string{letters, digits, letters, digits} {
		if group > 0 {
			b.WriteByte('-')
		}
		for range 4 {
			n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			if err != nil {
				return "", fmt.Errorf("random OTP: %w", err)
			}
			b.WriteByte(alphabet[n.Int64()])
		}
	}
	return b.String(), nil
}

func sortOTPs(recs []OTPRecord) {
	slices.SortFunc(recs, func(a, b OTPRecord) int { return cmp.Compare(a.seq, b.seq) })
}

type statusResponse struct {
	ServiceID string `json:"service_id"`
	Active    bool   `json:"active"`
	Online    bool   `json:"online"`
}

// handleStatus reports a service. The ID is one escaped path segment: a
// path with further segments is not this route (404 Not Found), and an
// escaped "/" is part of the ID.
func (e *Emulator) handleStatus(r *http.Request) reply {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), string(RouteStatus))
	if strings.Contains(raw, "/") {
		return errorReply(http.StatusNotFound, "Not Found")
	}
	if _, rep := e.bearer(r, ClaimStatus); rep != nil {
		return *rep
	}
	id, err := url.PathUnescape(raw)
	if err != nil {
		return errorReply(http.StatusNotFound, detailUnknownService)
	}
	s, ok := e.Service(id)
	if !ok {
		return errorReply(http.StatusNotFound, detailUnknownService)
	}
	return okReply(statusResponse{ServiceID: s.ID, Active: s.Active, Online: s.Online})
}

// tooLarge maps a request body over MaxRequestBodyBytes onto 413.
func tooLarge(err error) (reply, bool) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errorReply(http.StatusRequestEntityTooLarge, detailBodyTooLarge), true
	}
	return reply{}, false
}
