package panics

import (
	"context"
	"errors"
	"net/http"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
)

// UnaryServerInterceptor recovers a panic in the rest of the chain and
// the handler, reports it, and answers INTERNAL. Placed after the metrics
// and logging interceptors, it lets them count and log the call as the
// INTERNAL it answered. The call's context carries r (see NewContext), for
// the goroutines started on the call's behalf.
func UnaryServerInterceptor(r *Reporter) grpc.UnaryServerInterceptor {
	rec := recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		return r.Recovered(ctx, UnaryCall, p)
	}))
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return rec(NewContext(ctx, r), req, info, handler)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls.
func StreamServerInterceptor(r *Reporter) grpc.StreamServerInterceptor {
	rec := recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		return r.Recovered(ctx, StreamCall, p)
	}))
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ss = &middleware.WrappedServerStream{ServerStream: ss, WrappedContext: NewContext(ss.Context(), r)}
		return rec(srv, ss, info, handler)
	}
}

// Handler recovers a panic in next, reports it, and answers with
// writeError (a google.rpc.Status JSON body, INTERNAL) unless next had
// already begun its answer; then the connection is cut, as net/http does.
// http.ErrAbortHandler, net/http's own way of cutting a response short,
// passes through unreported.
func Handler(r *Reporter, next http.Handler, writeError func(w http.ResponseWriter, req *http.Request, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rw := &trackingWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			err := r.Recovered(req.Context(), HTTPHandler, p)
			if rw.wrote {
				panic(http.ErrAbortHandler)
			}
			writeError(w, req, err)
		}()
		next.ServeHTTP(rw, req.WithContext(NewContext(req.Context(), r)))
	})
}

// trackingWriter notes whether the answer has begun.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer
// (the gateway's streams move its write deadline, and flush).
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on, for the handlers that flush through the
// http.Flusher interface (grpc-gateway's streams).
func (w *trackingWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
