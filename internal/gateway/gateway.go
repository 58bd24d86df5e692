// Package gateway serves the AccessService over HTTP/JSON: the generated
// grpc-gateway v2 mux, liveness and readiness probes, and the OpenAPI
// document.
//
// The mux calls the AccessService implementation in-process, through the
// same unary interceptor chain as the gRPC server (logging, caller
// authentication, limits), so that an HTTP call is treated exactly like a
// native gRPC call without a second gRPC hop (docs/adr/0001-gateway-in-process.md
// has the measurements).
package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/requestid"
	"github.com/radkit/radkit-access-facade/server"
)

// Config configures the HTTP handler.
type Config struct {
	// Service implements AccessService. Required.
	Service accessv1.AccessServiceServer
	// Interceptor is the gRPC server's unary interceptor chain (see Chain);
	// every call runs through it. Nil runs none.
	Interceptor grpc.UnaryServerInterceptor
	// StreamInterceptor is the gRPC server's stream interceptor chain (see
	// ChainStream); every streaming call runs through it. Nil runs none.
	StreamInterceptor grpc.StreamServerInterceptor
	// Ready reports readiness for /readyz. Required.
	Ready func() (bool, string)
	// Upstream, if set, reports the upstream's state for the /readyz body
	// (which it never turns into a 503: see server.UpstreamService).
	Upstream func() (bool, string)
	// Identities, if set, reports each upstream identity's state for the
	// /readyz body (under "identities"); it never turns it into a 503.
	Identities func() any
	// State, if set, reports the shared state store's (Redis's) state for
	// the /readyz body, which it never turns into a 503 either: a Redis
	// outage must not take every replica out of service at once.
	State func() (bool, string)
	// Logger receives diagnostics. Nil discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; larger ones get 413. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// CORSAllowedOrigins lists the exact origins ("https://admin.example.com")
	// whose browser pages may call the API cross-origin (see withCORS).
	// Empty, the default, allows none.
	CORSAllowedOrigins []string
	// Panics reports a panic in the HTTP handler outside the interceptor
	// chain (which recovers its own) or in a stream's goroutine; the
	// request then answers 500 INTERNAL. Nil recovers without reporting.
	Panics *panics.Reporter
	// WatchHeartbeat is the service's watch heartbeat, the longest silence
	// of a watch stream: each message gets twice that, and at least a
	// minute, to reach the client. Zero means a minute.
	WatchHeartbeat time.Duration
	// StreamsCut, when closed, ends the streams whose writes wait for a
	// client that does not read: such a write fails at once (see
	// server.Server.WatchesCut). Nil never cuts.
	StreamsCut <-chan struct{}
	// APIDocs serves the API reference page under /docs/ (see
	// registerAPIDocs). False, the zero value, serves no page.
	APIDocs bool
}

// DefaultMaxBodyBytes bounds request bodies: the largest valid request is a
// few KiB.
const DefaultMaxBodyBytes = 64 << 10

// handler holds what the HTTP side needs per request.
type handler struct {
	maxBody int64
	// gw and marshaler answer errors (see errorHandler).
	gw        *runtime.ServeMux
	marshaler runtime.Marshaler
	// query lists the query keys each API route reads (see hygiene).
	query queryParams
}

// New returns the facade's HTTP handler:
//
//	/v1/...         the AccessService REST routes (see the OpenAPI document)
//	/healthz        liveness: 200 while the process serves HTTP
//	/readyz         readiness: 200 when ready, else 503 with the reason;
//	                the body also tells the upstream's state
//	/openapi.json   the OpenAPI v2 document generated from the protos
//	/openapi.v3.json  the same as an OpenAPI 3 document
//	/docs/          the API reference page, with Config.APIDocs
//
// Anything else is a 404 google.rpc.Status JSON error. A query parameter
// that the route does not read (any, on the routes with a body or on the
// probes), and an Idempotency-Key header that is not printable ASCII, are
// 400 INVALID_REQUEST naming it: the routes would otherwise drop them
// without a word (see hygiene).
func New(ctx context.Context, cfg Config) (http.Handler, error) {
	if cfg.Service == nil || cfg.Ready == nil {
		return nil, fmt.Errorf("gateway: Service and Ready are required")
	}
	h := &handler{maxBody: cfg.MaxBodyBytes, query: accessServiceQueryParams()}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	marshaler := &runtime.JSONPb{
		// Field names as in the protos (endpoint_id, service_id), and every
		// field present, so that "active": false is never left out.
		MarshalOptions: protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		// Unknown fields are refused: a misspelt field must not pass silently.
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	opts := []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithRoutingErrorHandler(h.routingError),
		runtime.WithErrorHandler(h.errorHandler),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
	}
	h.marshaler = marshaler
	// The middleware on the API's mux only: the stream routes' own mux
	// (registerStreams) is reached through it.
	gw := runtime.NewServeMux(append(slices.Clip(opts), runtime.WithMiddlewares(h.hygiene))...)
	h.gw = gw
	svc := &intercepted{srv: cfg.Service, interceptor: cfg.Interceptor}
	if err := accessv1.RegisterAccessServiceHandlerServer(ctx, gw, svc); err != nil {
		return nil, fmt.Errorf("gateway: register AccessService routes: %w", err)
	}
	// After the unary routes: a route registered later wins, and the
	// generated in-process one of a stream only answers UNIMPLEMENTED.
	if err := registerStreams(ctx, gw, opts, cfg.Service, cfg.StreamInterceptor, streamWriteWindow(cfg.WatchHeartbeat), cfg.StreamsCut); err != nil {
		return nil, fmt.Errorf("gateway: register AccessService stream routes: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", h.noQuery(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("GET /readyz", h.noQuery(ReadyHandler(cfg.Ready, cfg.Upstream, cfg.Identities, cfg.State)))
	mux.Handle("GET /openapi.json", h.noQuery(http.HandlerFunc(serveOpenAPI)))
	mux.Handle("GET /openapi.v3.json", h.noQuery(http.HandlerFunc(serveOpenAPIv3)))
	if cfg.APIDocs {
		if err := registerAPIDocs(mux, h.noQuery); err != nil {
			return nil, err
		}
	}
	mux.Handle("/", withPeer(limitBody(h.maxBody, gw)))
	handler, err := withCORS(cfg.CORSAllowedOrigins, mux)
	if err != nil {
		return nil, err
	}
	// Inside withRequestID: the panic's log line and the 500 carry the
	// request ID.
	handler = panics.Handler(cfg.Panics, handler, func(w http.ResponseWriter, _ *http.Request, err error) {
		writeStatus(w, http.StatusInternalServerError, status.Convert(err))
	})
	return withRequestID(handler), nil
}

// withRequestID gives every HTTP request its request ID, as
// server.UnaryRequestID does for a native gRPC call: the caller's
// X-Request-ID when it is well formed, else a generated one. The answer
// carries it as X-Request-ID, whatever it is (a call, a probe, a routing
// error), and the request's context carries it to the interceptor chain.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestid.Ensure(r.Header.Get(requestid.Key))
		w.Header().Set(requestid.Key, id)
		next.ServeHTTP(w, r.WithContext(requestid.NewContext(r.Context(), id)))
	})
}

// outgoingHeader decides which response header metadata of a call become
// HTTP headers: the runtime's default (Grpc-Metadata-<key>), except the
// request ID, which withRequestID already answers as X-Request-ID.
func outgoingHeader(key string) (string, bool) {
	if key == requestid.Key {
		return "", false
	}
	return runtime.MetadataHeaderPrefix + key, true
}

// ReadyHandler serves /readyz: 200 {"status": "ready"} when ready says
// so, else 503 with the reason; with upstream, the upstream's state; with
// identities, each identity's state; with state, the shared state store's
// (Redis's). upstream, identities and state may be nil; none of them ever
// turns the answer into a 503.
func ReadyHandler(ready, upstream func() (bool, string), identities func() any, state func() (bool, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, code := map[string]any{"status": "ready"}, http.StatusOK
		if ok, reason := ready(); !ok {
			body, code = map[string]any{"status": "not ready", "reason": reason}, http.StatusServiceUnavailable
		}
		if upstream != nil {
			body["upstream"] = "up"
			if up, reason := upstream(); !up {
				body["upstream"], body["upstream_reason"] = "down", reason
			}
		}
		if identities != nil {
			body["identities"] = identities()
		}
		if state != nil {
			body["state"] = "up"
			if up, reason := state(); !up {
				body["state"], body["state_reason"] = "down", reason
			}
		}
		writeJSON(w, code, body)
	})
}

// incomingHeader decides which HTTP request headers become incoming gRPC
// metadata: the runtime's default set, except Authorization. The runtime
// already forwards Authorization as the metadata key "authorization", as a
// native gRPC caller sends it, and ahead of every matched header (so
// callerauth sees the caller's key there, exactly once). Matching it here
// too would add the same value a second time, and the default would also
// copy it to "grpcgateway-authorization", one more place for a caller's key
// to leak from.
//
// Idempotency-Key (POST /v1/otp's request_id as a header) is forwarded as
// the metadata the server reads it from, server.IdempotencyKeyMetadata.
func incomingHeader(key string) (string, bool) {
	switch textproto.CanonicalMIMEHeaderKey(key) {
	case "Authorization":
		return "", false
	case idempotencyKeyHeader:
		return server.IdempotencyKeyMetadata, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// routingError answers requests that match no route through the mux's one
// error handler, like every other error: a google.rpc.Status with an
// ErrorInfo, and the HTTP status the router chose (404; 405 for a known
// path with another method; 400 for a path it cannot parse).
func (h *handler) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var st *status.Status
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		st = reason.New(reason.MethodNotAllowed, fmt.Sprintf("method %s is not allowed for this path", r.Method))
	case http.StatusBadRequest:
		st = reason.New(reason.InvalidRequest, "invalid request path")
	case http.StatusNotFound:
		st = reason.New(reason.NotFound, "no such path")
	default:
		st = reason.New(reason.Internal, http.StatusText(httpStatus))
	}
	h.errorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: st.Err()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
