package gateway

import (
	"context"
	"net"
	"net/http"
	"net/netip"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server"
)

// intercepted runs the gRPC server's unary interceptor chain around each
// AccessService method, so that a call through the in-process gateway is
// logged, authenticated and limited exactly like a native gRPC call.
type intercepted struct {
	accessv1.UnimplementedAccessServiceServer
	srv         accessv1.AccessServiceServer
	interceptor grpc.UnaryServerInterceptor
}

func (s *intercepted) call(ctx context.Context, method string, req any, handler grpc.UnaryHandler) (any, error) {
	// The call's log line says which door it came in by.
	ctx = server.WithProtocol(ctx, server.ProtocolHTTP)
	if s.interceptor == nil {
		return handler(ctx, req)
	}
	return s.interceptor(ctx, req, &grpc.UnaryServerInfo{Server: s.srv, FullMethod: method}, handler)
}

func (s *intercepted) GenerateOTP(ctx context.Context, req *accessv1.GenerateOTPRequest) (*accessv1.GenerateOTPResponse, error) {
	resp, err := s.call(ctx, accessv1.AccessService_GenerateOTP_FullMethodName, req, func(ctx context.Context, req any) (any, error) {
		return s.srv.GenerateOTP(ctx, req.(*accessv1.GenerateOTPRequest))
	})
	if err != nil {
		return nil, err
	}
	return resp.(*accessv1.GenerateOTPResponse), nil
}

func (s *intercepted) GetServiceStatus(ctx context.Context, req *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	resp, err := s.call(ctx, accessv1.AccessService_GetServiceStatus_FullMethodName, req, func(ctx context.Context, req any) (any, error) {
		return s.srv.GetServiceStatus(ctx, req.(*accessv1.GetServiceStatusRequest))
	})
	if err != nil {
		return nil, err
	}
	return resp.(*accessv1.GetServiceStatusResponse), nil
}

func (s *intercepted) RevokeToken(ctx context.Context, req *accessv1.RevokeTokenRequest) (*accessv1.RevokeTokenResponse, error) {
	resp, err := s.call(ctx, accessv1.AccessService_RevokeToken_FullMethodName, req, func(ctx context.Context, req any) (any, error) {
		return s.srv.RevokeToken(ctx, req.(*accessv1.RevokeTokenRequest))
	})
	if err != nil {
		return nil, err
	}
	return resp.(*accessv1.RevokeTokenResponse), nil
}

// withPeer gives every HTTP request's context the gRPC peer an interceptor
// would see for a native call: the client's address and, over TLS, its
// verified certificates as credentials.TLSInfo. The gateway derives each
// call's context from the request's, so interceptors that log the peer or
// authenticate by client certificate work unchanged for HTTP callers.
func withPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &peer.Peer{Addr: remoteAddr(r.RemoteAddr)}
		if r.TLS != nil {
			p.AuthInfo = credentials.TLSInfo{
				State:          *r.TLS,
				CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
			}
		}
		next.ServeHTTP(w, r.WithContext(peer.NewContext(r.Context(), p)))
	})
}

func remoteAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return stringAddr(s)
}

// stringAddr is a net.Addr for remote addresses that are not IP:port.
type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
