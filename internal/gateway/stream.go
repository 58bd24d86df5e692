package gateway

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/panics"
	"github.com/radkit/radkit-access-facade/server"
)

// The generated in-process handlers (RegisterAccessServiceHandlerServer)
// do not serve server streams. The gateway serves WatchServiceStatus with
// the generated client-side handler instead (RegisterAccessServiceHandlerClient,
// on a mux of its own), over streamClient: an AccessServiceClient whose
// stream runs the service in-process, through the gRPC server's stream
// interceptor chain, and hands each message over a channel. Newline-
// delimited JSON, the framing and the errors are then grpc-gateway's own.

// watchPath is the HTTP route of WatchServiceStatus, as in access.proto.
const watchPath = "/v1/services/{service_id}/status:watch"

// minStreamWriteWindow is the least time each write of a stream to the
// client gets: the server's WriteTimeout would cut every stream after a
// minute, so the stream moves the deadline before each message instead.
const minStreamWriteWindow = time.Minute

// streamWriteWindow is how long each message of a stream has to reach the
// client: twice the heartbeat (the longest silence between two messages,
// so the deadline set for one never cuts the wait for the next), and at
// least minStreamWriteWindow.
func streamWriteWindow(heartbeat time.Duration) time.Duration {
	return max(minStreamWriteWindow, 2*heartbeat)
}

// registerStreams routes the streaming methods of the service on gw; each
// message of a stream gets window to reach the client. Once cut is
// closed, no write of a stream waits any longer for its client.
func registerStreams(ctx context.Context, gw *runtime.ServeMux, opts []runtime.ServeMuxOption, srv accessv1.AccessServiceServer, interceptor grpc.StreamServerInterceptor, window time.Duration, cut <-chan struct{}) error {
	extendWriteDeadline := func(_ context.Context, w http.ResponseWriter, _ proto.Message) error {
		deadline := time.Now().Add(window)
		if isClosed(cut) {
			deadline = time.Now()
		}
		_ = http.NewResponseController(w).SetWriteDeadline(deadline)
		return nil
	}
	streams := runtime.NewServeMux(append(opts, runtime.WithForwardResponseOption(extendWriteDeadline))...)
	if err := accessv1.RegisterAccessServiceHandlerClient(ctx, streams, &streamClient{srv: srv, interceptor: interceptor}); err != nil {
		return err
	}
	return gw.HandlePath(http.MethodGet, watchPath, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		if cut != nil {
			// A client that does not read leaves a write waiting for it
			// (and the service's send waiting for that write): when the
			// streams are cut, the write fails at once and the stream
			// ends.
			served := make(chan struct{})
			defer close(served)
			go func() {
				select {
				case <-cut:
					_ = http.NewResponseController(w).SetWriteDeadline(time.Now())
				case <-served:
				}
			}()
		}
		streams.ServeHTTP(w, r)
	})
}

// isClosed reports whether ch, which is only ever closed, is; a nil ch
// never is.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// streamClient serves the streaming methods in-process; the unary ones
// never reach it (the gateway calls the service directly for them).
type streamClient struct {
	srv         accessv1.AccessServiceServer
	interceptor grpc.StreamServerInterceptor
}

var errNotStreaming = status.Error(codes.Internal, "gateway: unary call routed to the stream client")

func (c *streamClient) GenerateOTP(context.Context, *accessv1.GenerateOTPRequest, ...grpc.CallOption) (*accessv1.GenerateOTPResponse, error) {
	return nil, errNotStreaming
}

func (c *streamClient) GetServiceStatus(context.Context, *accessv1.GetServiceStatusRequest, ...grpc.CallOption) (*accessv1.GetServiceStatusResponse, error) {
	return nil, errNotStreaming
}

func (c *streamClient) RevokeToken(context.Context, *accessv1.RevokeTokenRequest, ...grpc.CallOption) (*accessv1.RevokeTokenResponse, error) {
	return nil, errNotStreaming
}

// WatchServiceStatus runs the service's WatchServiceStatus in a goroutine
// of its own, with the HTTP request's metadata as incoming metadata, and
// returns its messages as a client stream. The goroutine ends when the
// service returns, which it does once ctx (the HTTP request's) ends.
func (c *streamClient) WatchServiceStatus(ctx context.Context, in *accessv1.WatchServiceStatusRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[accessv1.WatchServiceStatusResponse], error) {
	md, _ := metadata.FromOutgoingContext(ctx)
	ctx = metadata.NewIncomingContext(ctx, md)
	ctx = server.WithProtocol(ctx, server.ProtocolHTTP)
	p := &pipe{ctx: ctx, msgs: make(chan proto.Message), headerSent: make(chan struct{}), done: make(chan struct{})}
	go func() {
		var err error
		defer func() {
			// The stream interceptor chain recovers the service's panics;
			// this covers the rest of the goroutine, which nothing else
			// would.
			if v := recover(); v != nil {
				err = panics.FromContext(ctx).Recovered(ctx, panics.GatewayStream, v)
			}
			p.finish(err)
		}()
		handler := func(_ any, ss grpc.ServerStream) error {
			return c.srv.WatchServiceStatus(in, &grpc.GenericServerStream[accessv1.WatchServiceStatusRequest, accessv1.WatchServiceStatusResponse]{ServerStream: ss})
		}
		if c.interceptor == nil {
			err = handler(c.srv, serverSide{p})
		} else {
			info := &grpc.StreamServerInfo{FullMethod: accessv1.AccessService_WatchServiceStatus_FullMethodName, IsServerStream: true}
			err = c.interceptor(c.srv, serverSide{p}, info, handler)
		}
	}()
	return clientSide[accessv1.WatchServiceStatusResponse]{p}, nil
}

// pipe carries one stream's messages from the service to the gateway.
// msgs is unbuffered: a message is sent once the gateway has taken it, so
// that when done is closed no message is left behind.
type pipe struct {
	ctx  context.Context
	msgs chan proto.Message

	mu         sync.Mutex
	header     metadata.MD
	trailer    metadata.MD
	headerSent chan struct{} // closed once headers are sent
	headerOnce sync.Once

	done chan struct{} // closed when the service returned; err is then set
	err  error
}

func (p *pipe) sendHeader() { p.headerOnce.Do(func() { close(p.headerSent) }) }

func (p *pipe) finish(err error) {
	if err != nil {
		err = status.Convert(err).Err()
	}
	p.err = err
	close(p.done)
}

// serverSide is the service's end: a grpc.ServerStream.
type serverSide struct{ p *pipe }

func (s serverSide) SetHeader(md metadata.MD) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.header = metadata.Join(s.p.header, md)
	return nil
}

func (s serverSide) SendHeader(md metadata.MD) error {
	err := s.SetHeader(md)
	s.p.sendHeader()
	return err
}

func (s serverSide) SetTrailer(md metadata.MD) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.trailer = metadata.Join(s.p.trailer, md)
}

func (s serverSide) Context() context.Context { return s.p.ctx }

func (s serverSide) SendMsg(m any) error {
	s.p.sendHeader()
	select {
	case s.p.msgs <- m.(proto.Message):
		return nil
	case <-s.p.ctx.Done():
		return status.FromContextError(s.p.ctx.Err()).Err()
	case <-s.p.done:
		// The service returned while a send of its was still waiting
		// (a send it abandoned): nobody takes the message any more.
		return status.Error(codes.Unavailable, "gateway: stream ended")
	}
}

// RecvMsg has nothing to give: the request of a server stream is handed
// to the service directly.
func (s serverSide) RecvMsg(any) error { return io.EOF }

// clientSide is the gateway's end: a grpc.ServerStreamingClient.
type clientSide[T any] struct{ p *pipe }

// Header waits for the first message or the end of the stream, so that a
// stream refused before its first message gets the HTTP status of its
// error rather than a 200 with an error line.
func (c clientSide[T]) Header() (metadata.MD, error) {
	select {
	case <-c.p.headerSent:
	case <-c.p.done:
		if c.p.err != nil {
			return nil, c.p.err
		}
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.p.header.Copy(), nil
}

func (c clientSide[T]) Trailer() metadata.MD {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.p.trailer.Copy()
}

func (c clientSide[T]) CloseSend() error         { return nil }
func (c clientSide[T]) Context() context.Context { return c.p.ctx }
func (c clientSide[T]) SendMsg(any) error {
	return status.Error(codes.Internal, "gateway: send on a server stream")
}
func (c clientSide[T]) Recv() (*T, error) { return c.take() }

func (c clientSide[T]) RecvMsg(into any) error {
	m, err := c.take()
	if err != nil {
		return err
	}
	proto.Merge(into.(proto.Message), any(m).(proto.Message))
	return nil
}

func (c clientSide[T]) take() (*T, error) {
	select {
	case m := <-c.p.msgs:
		return any(m).(*T), nil
	case <-c.p.done:
		if c.p.err != nil {
			return nil, c.p.err
		}
		return nil, io.EOF
	}
}
