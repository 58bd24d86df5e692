package server

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/identity"
	"github.com/radkit/radkit-access-facade/internal/reason"
)

// Field limits, as documented in access.proto. They bound what reaches the
// upstream and what the facade holds in memory per call.
const (
	maxOwnerLen       = 254 // RFC 5321 path limit
	maxOwnerLocalLen  = 64  // RFC 5321 local-part limit
	maxEndpointIDLen  = 256
	maxDescriptionLen = 1024
	maxServiceIDLen   = 128
	maxTokenLen       = 8192
	maxRequestIDLen   = 128
)

// violations collects the field violations of one request, so that a caller
// learns about every invalid field at once.
type violations []*errdetails.BadRequest_FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{
		Field:       field,
		Description: fmt.Sprintf(format, args...),
	})
}

// err returns nil when there are no violations, else an INVALID_ARGUMENT
// status carrying a google.rpc.BadRequest and a google.rpc.ErrorInfo.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	msgs := make([]string, len(v))
	for i, fv := range v {
		msgs[i] = fv.GetField() + ": " + fv.GetDescription()
	}
	return reason.Error(reason.InvalidRequest, "invalid request: "+strings.Join(msgs, "; "),
		reason.WithDetails(&errdetails.BadRequest{FieldViolations: v}))
}

// validateGenerateOTP checks a GenerateOTPRequest against the limits
// documented in the proto. It returns nil or an INVALID_ARGUMENT status.
func validateGenerateOTP(r *accessv1.GenerateOTPRequest) error {
	var v violations
	if msg := checkEmail(r.GetOwner()); msg != "" {
		v.add("owner", "%s", msg)
	}
	checkText(&v, "endpoint_id", r.GetEndpointId(), true, maxEndpointIDLen, false)
	checkText(&v, "description", r.GetDescription(), false, maxDescriptionLen, true)
	if id := r.GetRequestId(); id != "" {
		checkIdentifier(&v, "request_id", id, maxRequestIDLen)
	}
	checkIdentity(&v, r.GetIdentity())
	return v.err()
}

// validateGetServiceStatus checks a GetServiceStatusRequest. It
// returns nil or an INVALID_ARGUMENT status.
func validateGetServiceStatus(r *accessv1.GetServiceStatusRequest) error {
	var v violations
	checkIdentifier(&v, "service_id", r.GetServiceId(), maxServiceIDLen)
	checkIdentity(&v, r.GetIdentity())
	return v.err()
}

// validateWatchServiceStatus checks a WatchServiceStatusRequest: the
// service_id as GetServiceStatus checks it, until one of the defined
// conditions, and the optional identity a well-formed name. It returns nil
// or an INVALID_ARGUMENT status.
func validateWatchServiceStatus(r *accessv1.WatchServiceStatusRequest) error {
	var v violations
	checkIdentifier(&v, "service_id", r.GetServiceId(), maxServiceIDLen)
	if _, ok := accessv1.WatchServiceStatusRequest_Until_name[int32(r.GetUntil())]; !ok {
		v.add("until", "must be one of %s", untilNames())
	}
	checkIdentity(&v, r.GetIdentity())
	return v.err()
}

// untilNames lists the defined until conditions in number order, from the
// generated enum, so that a condition added to the proto is named too.
func untilNames() string {
	names := make([]string, 0, len(accessv1.WatchServiceStatusRequest_Until_name))
	for _, n := range slices.Sorted(maps.Keys(accessv1.WatchServiceStatusRequest_Until_name)) {
		names = append(names, accessv1.WatchServiceStatusRequest_Until_name[n])
	}
	return strings.Join(names, ", ")
}

// validateRevokeToken checks a RevokeTokenRequest. It returns nil or
// an INVALID_ARGUMENT status. The token itself never appears in the error.
func validateRevokeToken(r *accessv1.RevokeTokenRequest) error {
	var v violations
	token := r.GetToken()
	switch {
	case token == "":
		v.add("token", "is required")
	case len(token) > maxTokenLen:
		v.add("token", "must be at most %d characters", maxTokenLen)
	case strings.IndexFunc(token, func(c rune) bool { return c < '!' || c > '~' }) >= 0:
		v.add("token", "must be printable ASCII without spaces")
	}
	checkIdentity(&v, r.GetIdentity())
	return v.err()
}

// checkText validates free text: valid UTF-8, bounded in characters, no
// control characters (tab and newline allowed where multiline is true), and
// when required, not blank.
func checkText(v *violations, field, s string, required bool, maxLen int, multiline bool) {
	switch {
	case required && strings.TrimSpace(s) == "":
		v.add(field, "is required")
	case !utf8.ValidString(s):
		v.add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(s) > maxLen:
		v.add(field, "must be at most %d characters", maxLen)
	case strings.IndexFunc(s, func(c rune) bool {
		if multiline && (c == '\t' || c == '\n') {
			return false
		}
		return unicode.IsControl(c)
	}) >= 0:
		v.add(field, "must not contain control characters")
	}
}

// checkIdentifier validates an identifier that travels in a URL path or a
// cache key: letters, digits, '-', '_' and '.', and never "." or "..", which
// HTTP servers and proxies resolve as path segments.
func checkIdentifier(v *violations, field, s string, maxLen int) {
	switch {
	case s == "":
		v.add(field, "is required")
	case len(s) > maxLen:
		v.add(field, "must be at most %d characters", maxLen)
	case strings.IndexFunc(s, func(c rune) bool { return !isIdentifierChar(c) }) >= 0:
		v.add(field, "may contain only letters, digits, '-', '_' and '.'")
	case s == "." || s == "..":
		v.add(field, "must not be %q", s)
	}
}

func isIdentifierChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.'
}

// checkEmail validates an email address in the plain addr-spec form that
// RADKit identities use (user@example.com, user+tag@example.com). It
// returns a description of the first problem, or "" when the address is
// valid. Quoted local parts, comments, IP literals and display names are
// refused: no RADKit identity uses them, and they are where parsers differ.
func checkEmail(s string) string {
	if s == "" {
		return "is required"
	}
	if len(s) > maxOwnerLen {
		return fmt.Sprintf("must be at most %d characters", maxOwnerLen)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "must be an email address such as user@example.com"
	}
	local, domain := s[:at], s[at+1:]
	if local == "" || len(local) > maxOwnerLocalLen || !isDotAtom(local, isLocalChar) {
		return "must be an email address such as user@example.com: the part before '@' is not valid"
	}
	if !isDomain(domain) {
		return "must be an email address such as user@example.com: the domain is not valid"
	}
	return ""
}

// isLocalChar reports whether c is allowed in an unquoted local part
// (RFC 5322 atext), which includes '+' for tagged identities.
func isLocalChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.ContainsRune("!#$%&'*+/=?^_`{|}~-", c)
}

// isDotAtom reports whether s is non-empty runs of allowed characters
// separated by single dots.
func isDotAtom(s string, allowed func(rune) bool) bool {
	for _, part := range strings.Split(s, ".") {
		if part == "" || strings.IndexFunc(part, func(c rune) bool { return !allowed(c) }) >= 0 {
			return false
		}
	}
	return true
}

// isDomain reports whether s is a DNS name of at least two labels, each of
// letters, digits and inner hyphens, at most 63 characters.
func isDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 || len(s) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		if strings.IndexFunc(l, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-')
		}) >= 0 {
			return false
		}
	}
	return true
}

// checkIdentity checks the optional identity field: empty, or a name as
// package identity defines them. The name itself is not repeated in the
// description (it is the caller's own input, and may be anything).
func checkIdentity(v *violations, name string) {
	if name != "" && !identity.ValidName(name) {
		v.add("identity", "must be %s", identity.NameRule)
	}
}
