package server

import (
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// violationFields returns the fields named by err's BadRequest, checking
// that err is a well-formed INVALID_ARGUMENT status on the way.
func violationFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("got %v, want an INVALID_ARGUMENT status", err)
	}
	var fields []string
	var reason string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				if v.GetDescription() == "" {
					t.Errorf("violation of %s has no description", v.GetField())
				}
				fields = append(fields, v.GetField())
			}
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		}
	}
	if reason != accessv1.ErrorReason_INVALID_REQUEST.String() {
		t.Errorf("ErrorInfo reason %q, want %q", reason, accessv1.ErrorReason_INVALID_REQUEST.String())
	}
	if len(fields) == 0 {
		t.Errorf("INVALID_ARGUMENT without field violations: %v", err)
	}
	return fields
}

func TestValidateGenerateOTP(t *testing.T) {
	valid := func() *accessv1.GenerateOTPRequest {
		return &accessv1.GenerateOTPRequest{Owner: "user@example.com", EndpointId: "endpoint-identifier", Description: "lab router"}
	}
	tests := []struct {
		name   string
		modify func(r *accessv1.GenerateOTPRequest)
		want   []string // fields with violations; nil means valid
	}{
		{"valid", func(r *accessv1.GenerateOTPRequest) {}, nil},
		{"tagged owner", func(r *accessv1.GenerateOTPRequest) { r.Owner = "automation+customer-a@cisco.com" }, nil},
		{"dotted owner and subdomain", func(r *accessv1.GenerateOTPRequest) { r.Owner = "first.last@mail.example.co.uk" }, nil},
		{"no description", func(r *accessv1.GenerateOTPRequest) { r.Description = "" }, nil},
		{"multiline description", func(r *accessv1.GenerateOTPRequest) { r.Description = "line 1\nline 2\tend" }, nil},
		{"unicode endpoint", func(r *accessv1.GenerateOTPRequest) { r.EndpointId = "Zürich-rtr-01 (lab)" }, nil},
		{"request id", func(r *accessv1.GenerateOTPRequest) { r.RequestId = "6f1c1f5e-7c2b-4b8e-9b43-0c4c3f1f2a10" }, nil},
		{"missing owner", func(r *accessv1.GenerateOTPRequest) { r.Owner = "" }, []string{"owner"}},
		{"owner without at", func(r *accessv1.GenerateOTPRequest) { r.Owner = "user.example.com" }, []string{"owner"}},
		{"owner without domain dot", func(r *accessv1.GenerateOTPRequest) { r.Owner = "user@localhost" }, []string{"owner"}},
		{"owner with display name", func(r *accessv1.GenerateOTPRequest) { r.Owner = "User <user@example.com>" }, []string{"owner"}},
		{"owner with space", func(r *accessv1.GenerateOTPRequest) { r.Owner = "us er@example.com" }, []string{"owner"}},
		{"owner double dot", func(r *accessv1.GenerateOTPRequest) { r.Owner = "us..er@example.com" }, []string{"owner"}},
		{"owner two ats", func(r *accessv1.GenerateOTPRequest) { r.Owner = "a@b@example.com" }, []string{"owner"}},
		{"owner domain hyphen edge", func(r *accessv1.GenerateOTPRequest) { r.Owner = "user@-example.com" }, []string{"owner"}},
		{"owner too long", func(r *accessv1.GenerateOTPRequest) {
			r.Owner = strings.Repeat("a", 60) + "@" + strings.Repeat("b", 200) + ".com"
		}, []string{"owner"}},
		{"owner local part too long", func(r *accessv1.GenerateOTPRequest) { r.Owner = strings.Repeat("a", 65) + "@example.com" }, []string{"owner"}},
		{"missing endpoint", func(r *accessv1.GenerateOTPRequest) { r.EndpointId = "" }, []string{"endpoint_id"}},
		{"blank endpoint", func(r *accessv1.GenerateOTPRequest) { r.EndpointId = "   " }, []string{"endpoint_id"}},
		{"endpoint with newline", func(r *accessv1.GenerateOTPRequest) { r.EndpointId = "a\nb" }, []string{"endpoint_id"}},
		{"endpoint with NUL", func(r *accessv1.GenerateOTPRequest) { r.EndpointId = "a\x00b" }, []string{"endpoint_id"}},
		{"endpoint too long", func(r *accessv1.GenerateOTPRequest) { r.EndpointId = strings.Repeat("é", 257) }, []string{"endpoint_id"}},
		{"endpoint at limit", func(r *accessv1.GenerateOTPRequest) { r.EndpointId = strings.Repeat("é", 256) }, nil},
		{"description too long", func(r *accessv1.GenerateOTPRequest) { r.Description = strings.Repeat("x", 1025) }, []string{"description"}},
		{"description with escape", func(r *accessv1.GenerateOTPRequest) { r.Description = "bell\a" }, []string{"description"}},
		{"request id with slash", func(r *accessv1.GenerateOTPRequest) { r.RequestId = "a/b" }, []string{"request_id"}},
		{"request id too long", func(r *accessv1.GenerateOTPRequest) { r.RequestId = strings.Repeat("r", 129) }, []string{"request_id"}},
		{"everything wrong", func(r *accessv1.GenerateOTPRequest) {
			r.Owner, r.EndpointId, r.Description, r.RequestId = "nope", "", "\x01", "?"
		}, []string{"owner", "endpoint_id", "description", "request_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.modify(r)
			got := violationFields(t, validateGenerateOTP(r))
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("violations %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateGetServiceStatus(t *testing.T) {
	tests := []struct {
		id    string
		valid bool
	}{
		{"1ryq-e8n8-5g5n", true},
		{"123-123-123", true},
		{"svc_01.eu", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{".", false},
		{"..", false},
		{"../admin", false},
		{"a/b", false},
		{"a%2Fb", false},
		{"a?b", false},
		{"a#b", false},
		{"a b", false},
		{"é", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			fields := violationFields(t, validateGetServiceStatus(&accessv1.GetServiceStatusRequest{ServiceId: tt.id}))
			if (fields == nil) != tt.valid {
				t.Errorf("valid = %v, want %v", fields == nil, tt.valid)
			}
		})
	}
}

// TestValidateWatchServiceStatusUntil: an undefined until is refused with
// a message that names every defined condition, in number order.
func TestValidateWatchServiceStatusUntil(t *testing.T) {
	err := validateWatchServiceStatus(&accessv1.WatchServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n", Until: 99})
	if fields := violationFields(t, err); len(fields) != 1 || fields[0] != "until" {
		t.Fatalf("violations of %v, want until only", fields)
	}
	var names []string
	for n := range int32(len(accessv1.WatchServiceStatusRequest_Until_name)) {
		name, ok := accessv1.WatchServiceStatusRequest_Until_name[n]
		if !ok {
			t.Fatalf("until values are not numbered 0..%d", len(accessv1.WatchServiceStatusRequest_Until_name)-1)
		}
		names = append(names, name)
	}
	want := "must be one of " + strings.Join(names, ", ")
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			if got := br.GetFieldViolations()[0].GetDescription(); got != want {
				t.Errorf("until violation %q, want %q", got, want)
			}
		}
	}
	for n := range accessv1.WatchServiceStatusRequest_Until_name {
		if err := validateWatchServiceStatus(&accessv1.WatchServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n", Until: accessv1.WatchServiceStatusRequest_Until(n)}); err != nil {
			t.Errorf("until %d refused: %v", n, err)
		}
	}
}

func TestValidateRevokeToken(t *testing.T) {
	const secretToken = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2ln"
	tests := []struct {
		name  string
		token string
		valid bool
	}{
		{"jwt", secretToken, true},
		{"empty", "", false},
		{"too long", strings.Repeat("t", 8193), false},
		{"space", "abc def", false},
		{"newline", secretToken + "\n", false},
		{"non-ascii", "tökén", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateRevokeToken(&accessv1.RevokeTokenRequest{Token: tt.token})
			fields := violationFields(t, err)
			if (fields == nil) != tt.valid {
				t.Errorf("valid = %v, want %v", fields == nil, tt.valid)
			}
			if err != nil && tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("the error repeats the token: %v", err)
			}
		})
	}
}

// FuzzValidateGenerateOTP checks that validation never panics, always
// answers nil or a well-formed INVALID_ARGUMENT, and that what it accepts
// keeps the documented limits.
func FuzzValidateGenerateOTP(f *testing.F) {
	f.Add("user@example.com", "endpoint-identifier", "description", "")
	f.Add("automation+customer-a@cisco.com", "ep", "", "6f1c1f5e-7c2b")
	f.Add("a@b", "\x00", "\xff", "../x")
	f.Fuzz(func(t *testing.T, owner, endpoint, description, requestID string) {
		r := &accessv1.GenerateOTPRequest{Owner: owner, EndpointId: endpoint, Description: description, RequestId: requestID}
		err := validateGenerateOTP(r)
		if err != nil {
			violationFields(t, err)
			return
		}
		if len(owner) > maxOwnerLen || strings.Count(owner, "@") != 1 || strings.ContainsAny(owner, " <>\"\r\n") {
			t.Errorf("accepted owner %q", owner)
		}
		if strings.TrimSpace(endpoint) == "" || strings.ContainsAny(endpoint, "\x00\r\n\x7f") {
			t.Errorf("accepted endpoint_id %q", endpoint)
		}
		if strings.ContainsAny(requestID, "/?#% ") {
			t.Errorf("accepted request_id %q", requestID)
		}
	})
}

// FuzzValidateGetServiceStatus checks that every accepted service ID is one
// path segment that no server would resolve or split.
func FuzzValidateGetServiceStatus(f *testing.F) {
	f.Add("1ryq-e8n8-5g5n")
	f.Add("..")
	f.Add("a%2F..")
	f.Fuzz(func(t *testing.T, id string) {
		err := validateGetServiceStatus(&accessv1.GetServiceStatusRequest{ServiceId: id})
		if err != nil {
			violationFields(t, err)
			return
		}
		if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\\?#% \x00") || len(id) > maxServiceIDLen {
			t.Errorf("accepted service_id %q", id)
		}
	})
}

// FuzzValidateRevokeToken checks that every accepted token is bounded
// printable ASCII, safe in the revocation request's query string once
// escaped and in no need of trimming.
func FuzzValidateRevokeToken(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.sig")
	f.Add(" ")
	f.Fuzz(func(t *testing.T, token string) {
		err := validateRevokeToken(&accessv1.RevokeTokenRequest{Token: token})
		if err != nil {
			violationFields(t, err)
			return
		}
		if token == "" || len(token) > maxTokenLen {
			t.Errorf("accepted token of %d bytes", len(token))
		}
		for _, c := range []byte(token) {
			if c < '!' || c > '~' {
				t.Errorf("accepted token with byte %#x", c)
			}
		}
	})
}
