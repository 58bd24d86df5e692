package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// bodyLimitKey marks, in a request's context, whether its body hit the limit.
type bodyLimitKey struct{}

// limitBody bounds request bodies at max bytes. A request that declares a
// larger Content-Length is refused at once with 413; a chunked body is cut
// at the limit, and the error handler turns the decode failure into 413.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeStatus(w, http.StatusRequestEntityTooLarge, tooLarge(max))
			return
		}
		exceeded := new(atomic.Bool)
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, max), exceeded: exceeded}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, exceeded)))
	})
}

type limitedBody struct {
	io.ReadCloser
	exceeded *atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		b.exceeded.Store(true)
	}
	return n, err
}

// tooLarge is the status of a request body over max bytes.
func tooLarge(max int64) *status.Status {
	return reason.New(reason.RequestTooLarge, fmt.Sprintf("request body is larger than %d bytes", max))
}

// errorHandler writes every error as google.rpc.Status JSON with the
// matching HTTP status, like runtime.DefaultHTTPErrorHandler, and makes two
// things right that the default does not: a body over the limit is 413, not
// 400; and errors raised by the gateway itself (undecodable JSON, unknown
// fields, bad path parameters) carry an ErrorInfo like every other error.
func (h *handler) errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if exceeded, _ := r.Context().Value(bodyLimitKey{}).(*atomic.Bool); exceeded != nil && exceeded.Load() {
		writeStatus(w, http.StatusRequestEntityTooLarge, tooLarge(h.maxBody))
		return
	}
	// A routing error comes as an HTTPStatusError around its status; the
	// default handler below unwraps it the same way.
	var custom *runtime.HTTPStatusError
	if errors.As(err, &custom) {
		err = custom.Err
	}
	st := status.Convert(err)
	if st.Code() == codes.InvalidArgument && !hasErrorInfo(st) {
		var kept []protoadapt.MessageV1
		for _, d := range st.Details() {
			if m, ok := d.(protoadapt.MessageV1); ok {
				kept = append(kept, m)
			}
		}
		err = reason.Error(reason.InvalidRequest, st.Message(), reason.WithDetails(kept...))
	}
	if status.Code(err) == codes.Unauthenticated {
		// RFC 9110: a 401 says which scheme would be accepted. The
		// default handler sets WWW-Authenticate to the status message
		// just before it writes the header; ours goes in last.
		w = &challengeWriter{ResponseWriter: w, challenge: challenge(r)}
	}
	if d, ok := retryDelay(status.Convert(err)); ok {
		// HTTP clients and proxies understand Retry-After, not RetryInfo.
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
	if custom != nil {
		err = &runtime.HTTPStatusError{HTTPStatus: custom.HTTPStatus, Err: err}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// bearerChallenge is the WWW-Authenticate value of a 401 (RFC 6750
// section 3).
const bearerChallenge = `Bearer realm="radkit-access-facade"`

// challenge is the WWW-Authenticate value of a 401 answer to r: the realm
// alone when r carried no credentials, and error="invalid_token" when it
// carried some that were refused (RFC 6750 section 3.1).
func challenge(r *http.Request) string {
	if r.Header.Get("Authorization") != "" {
		return bearerChallenge + `, error="invalid_token"`
	}
	return bearerChallenge
}

// challengeWriter sets WWW-Authenticate to challenge when the header is
// written, over whatever was set before.
type challengeWriter struct {
	http.ResponseWriter
	challenge string
}

func (w *challengeWriter) WriteHeader(code int) {
	w.Header().Set("WWW-Authenticate", w.challenge)
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// retryDelay returns the RetryInfo delay of st, if it has one.
func retryDelay(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return max(ri.GetRetryDelay().AsDuration(), 0), true
		}
	}
	return 0, false
}

func hasErrorInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.ErrorInfo); ok {
			return true
		}
	}
	return false
}

// writeStatus writes st as google.rpc.Status JSON with the given HTTP code.
func writeStatus(w http.ResponseWriter, code int, st *status.Status) {
	body, err := (&runtime.JSONPb{}).Marshal(st.Proto())
	if err != nil {
		http.Error(w, http.StatusText(code), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
