package gateway

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/reason"
)

// A route reads from its query string only the request fields that its
// google.api.http binding leaves there: none for a route whose body is
// "*", every field not bound in the path for a GET. grpc-gateway's query
// parser skips any other key without a word (and the routes with a body
// never look at the query), so that ?identity=customer-b on POST /v1/otp
// would mint as the caller's default identity. The gateway refuses such
// keys instead, before the call runs, as it refuses unknown body fields.

// queryParams maps each route ("GET /v1/services/{service_id=*}/status",
// the HTTP method and the route's runtime.Pattern) to the query keys it
// reads. A route missing from it reads none.
type queryParams map[string][]string

// templateVar matches a variable of a path template, "{service_id}".
var templateVar = regexp.MustCompile(`\{([^}=]+)(=[^}]*)?\}`)

// routeQueryParams derives queryParams from the google.api.http bindings
// of every method of sd: a key is a field's proto name or its JSON name,
// the two names grpc-gateway's query parser accepts.
func routeQueryParams(sd protoreflect.ServiceDescriptor) queryParams {
	params := queryParams{}
	methods := sd.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule == nil {
			continue
		}
		for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			verb, template := httpRule(r)
			if template == "" {
				continue
			}
			params[verb+" "+patternString(template)] = readFromQuery(m.Input(), template, r.GetBody())
		}
	}
	return params
}

// httpRule returns the HTTP method and path template of r.
func httpRule(r *annotations.HttpRule) (verb, template string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

// patternString is what runtime.Pattern.String returns for template: a
// variable without a pattern of its own matches one segment, "{name=*}".
func patternString(template string) string {
	return templateVar.ReplaceAllStringFunc(template, func(v string) string {
		if strings.Contains(v, "=") {
			return v
		}
		return v[:len(v)-1] + "=*}"
	})
}

// readFromQuery returns the query keys a route with template and body
// reads into a request of type in.
func readFromQuery(in protoreflect.MessageDescriptor, template, body string) []string {
	if body == "*" {
		return nil
	}
	bound := map[string]bool{body: true}
	for _, m := range templateVar.FindAllStringSubmatch(template, -1) {
		bound[strings.SplitN(m[1], ".", 2)[0]] = true
	}
	var keys []string
	fields := in.Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if bound[string(f.Name())] {
			continue
		}
		keys = append(keys, string(f.Name()))
		if f.JSONName() != string(f.Name()) {
			keys = append(keys, f.JSONName())
		}
	}
	return keys
}

// checkQuery returns the INVALID_REQUEST status of a query string that
// route does not read all of (or that does not parse), or nil. allowed
// are the keys it reads.
func checkQuery(route string, rawQuery string, allowed []string) *status.Status {
	if rawQuery == "" {
		return nil
	}
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return reason.New(reason.InvalidRequest, "the query string does not parse: "+err.Error())
	}
	var unknown []string
	for k := range values {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	reads := "no query parameters"
	if len(allowed) > 0 {
		reads = "only the query parameters " + strings.Join(allowed, ", ")
	}
	br := &errdetails.BadRequest{}
	for _, k := range unknown {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       k,
			Description: fmt.Sprintf("unknown query parameter %q: %s reads %s", k, route, reads),
		})
	}
	return reason.New(reason.InvalidRequest,
		fmt.Sprintf("unknown query parameter %q: %s reads %s", unknown[0], route, reads),
		reason.WithDetails(br))
}

// metadataText reports whether v passes through the gateway's header
// matcher: gRPC metadata values are printable ASCII, and the runtime drops
// (and logs at ERROR) any other.
func metadataText(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkHeaders returns the INVALID_REQUEST status of an Idempotency-Key
// that cannot reach the service as metadata, or nil; a retry with a key
// dropped on the way would mint a second OTP. It returns r itself, or,
// when another header it forwards as metadata has a value that cannot
// pass, a shallow copy of r without that value: nothing in the facade
// reads those headers (User-Agent, Accept, ...), and the runtime would
// write an ERROR line for each, one any caller could produce at will.
func checkHeaders(r *http.Request) (*http.Request, *status.Status) {
	var drop []string
	for key, vals := range r.Header {
		if _, forwarded := incomingHeader(key); !forwarded {
			continue
		}
		for _, v := range vals {
			if metadataText(v) {
				continue
			}
			if textproto.CanonicalMIMEHeaderKey(key) == idempotencyKeyHeader {
				br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
					Field:       idempotencyKeyHeader,
					Description: "the Idempotency-Key header must be printable ASCII",
				}}}
				return r, reason.New(reason.InvalidRequest,
					"the Idempotency-Key header must be printable ASCII (it is the request_id: 1 to 128 characters of letters, digits, \"-\", \"_\", \".\" and \":\")",
					reason.WithDetails(br))
			}
			drop = append(drop, key)
			break
		}
	}
	if len(drop) == 0 {
		return r, nil
	}
	r2 := *r
	r2.Header = r.Header.Clone()
	for _, key := range drop {
		kept := slices.DeleteFunc(r2.Header[key], func(v string) bool { return !metadataText(v) })
		if len(kept) == 0 {
			delete(r2.Header, key)
		} else {
			r2.Header[key] = kept
		}
	}
	return &r2, nil
}

// idempotencyKeyHeader is the HTTP header of GenerateOTP's request_id.
const idempotencyKeyHeader = "Idempotency-Key"

// hygiene is the gateway mux's middleware that refuses what a route would
// otherwise drop without a word: query keys it does not read (see
// queryParams) and an Idempotency-Key that cannot pass as metadata (see
// checkHeaders).
func (h *handler) hygiene(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
		route := r.Method
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route += " " + p.String()
		}
		if st := checkQuery(route, r.URL.RawQuery, h.query[route]); st != nil {
			h.refuse(w, r, st)
			return
		}
		r, st := checkHeaders(r)
		if st != nil {
			h.refuse(w, r, st)
			return
		}
		next(w, r, pathParams)
	}
}

// noQuery refuses any query string on a route that reads none (the
// probes and the OpenAPI documents), as hygiene does on the API's routes.
func (h *handler) noQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := checkQuery(r.Method+" "+r.URL.Path, r.URL.RawQuery, nil); st != nil {
			h.refuse(w, r, st)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers st through the mux's one error handler.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, st *status.Status) {
	h.errorHandler(r.Context(), h.gw, h.marshaler, w, r, st.Err())
}

// accessServiceQueryParams are the query keys of the AccessService routes.
func accessServiceQueryParams() queryParams {
	return routeQueryParams(accessv1.File_radkit_access_v1_access_proto.Services().ByName("AccessService"))
}
