// The radkit.access.v1 API: a typed front for the RADKit Access Cloud Public
// API. Callers get service enrollment one-time passwords, read service status
// and revoke access tokens without knowing OAuth2: the facade holds the
// upstream credentials and gets and refreshes its access token itself.
//
// Errors. Every failed call returns a google.rpc.Status whose details carry a
// google.rpc.ErrorInfo with domain "radkit-access-facade", a reason from the
// list below and, where the upstream answered, metadata["upstream_status"]
// (the upstream HTTP status) and metadata["upstream_details"] (its "details"
// text). Where a retry may help, a google.rpc.RetryInfo says after how long.
// Invalid requests also carry a google.rpc.BadRequest with one field
// violation per invalid field. Over HTTP the same status is the JSON body,
// with the matching HTTP status code.
//
//   reason                          code                 when
//   INVALID_REQUEST                 INVALID_ARGUMENT     a field failed validation; nothing was sent upstream
//   UPSTREAM_BAD_REQUEST            INVALID_ARGUMENT     upstream 400
//   UPSTREAM_PERMISSION_DENIED      PERMISSION_DENIED    upstream 403: the facade's identity lacks the claim
//   UPSTREAM_NOT_FOUND              NOT_FOUND            upstream 404
//   UPSTREAM_RATE_LIMITED           RESOURCE_EXHAUSTED   upstream 429
//   UPSTREAM_CREDENTIALS_REJECTED   UNAVAILABLE          the facade's own upstream credentials were refused
//                                                        (not the caller's fault; operators must act)
//   CREDENTIALS_EXPIRED             UNAVAILABLE          the identity's own API token or client secret is past its
//                                                        expiry; nothing was sent upstream; operators must act
//   UPSTREAM_UNAVAILABLE            UNAVAILABLE          upstream 502/503/504, 5xx with retry=true, or a network failure
//   UPSTREAM_ERROR                  INTERNAL             any other upstream 5xx
//   UPSTREAM_MALFORMED_RESPONSE     INTERNAL             the upstream answered with a body the facade cannot use
//   UPSTREAM_TIMEOUT                DEADLINE_EXCEEDED    the caller's deadline passed before the upstream answered
//   REVOCATION_NOT_CONFIGURED       FAILED_PRECONDITION  RevokeToken without upstream client credentials
//   UPSTREAM_CIRCUIT_OPEN           UNAVAILABLE          the circuit breaker is open after sustained upstream
//                                                        failure; nothing was sent upstream
//   UPSTREAM_THROTTLED              UNAVAILABLE          the upstream answers too few calls and the facade's adaptive
//                                                        throttle refused this one; nothing was sent upstream
//   CALLER_UNAUTHENTICATED          UNAUTHENTICATED      no valid caller API key ("authorization: Bearer <key>")
//                                                        or client certificate
//   CALLER_RATE_LIMITED             RESOURCE_EXHAUSTED   the caller exceeded its rate limit at the facade
//   REQUEST_TOO_LARGE               RESOURCE_EXHAUSTED   the HTTP request body is over the facade's limit (HTTP 413)
//   TOO_MANY_WATCHES                RESOURCE_EXHAUSTED   WatchServiceStatus: the caller, or the replica, has as
//                                                        many open watches as it may
//   SHUTTING_DOWN                   UNAVAILABLE          WatchServiceStatus: the replica is shutting down; reconnect
//                                                        (to another replica) after the RetryInfo delay
//   UPSTREAM_CONCURRENCY_LIMIT      RESOURCE_EXHAUSTED   the facade's bound on upstream calls in flight stayed
//                                                        reached until the deadline; nothing was sent upstream
//   IDENTITY_NOT_GRANTED            PERMISSION_DENIED    the request's identity is not granted to the caller, or does
//                                                        not exist (the same answer, so names cannot be probed);
//                                                        nothing was sent upstream
//   UPSTREAM_BUDGET_EXHAUSTED       RESOURCE_EXHAUSTED   the facade's own budget of upstream calls per second is
//                                                        spent; nothing was sent upstream
//   STATE_UNAVAILABLE               UNAVAILABLE          GenerateOTP with request_id while the facade's shared state
//                                                        store (Redis) is unreachable (nothing was sent upstream), or
//                                                        its OTP could not be stored there before the deadline (a
//                                                        retry gets that OTP once stored)
//   STATE_LOST                      UNAVAILABLE          GenerateOTP with a request_id not found, while the shared
//                                                        state store is known to have lost acknowledged data: it may
//                                                        have been answered before; RetryInfo says when the refusal
//                                                        ends; nothing was sent upstream
//   STATE_KEY_UNKNOWN               INTERNAL             GenerateOTP replaying a result sealed under a state key the
//                                                        replica does not hold (ErrorInfo metadata key_id); no retry
//
// Every RPC can also return CALLER_UNAUTHENTICATED, CALLER_RATE_LIMITED,
// IDENTITY_NOT_GRANTED, CREDENTIALS_EXPIRED, UPSTREAM_CIRCUIT_OPEN,
// UPSTREAM_THROTTLED, UPSTREAM_CONCURRENCY_LIMIT and
// UPSTREAM_BUDGET_EXHAUSTED.
//
// Identities. One facade may hold several upstream identities (RADKit
// Access "tagged client IDs", one per customer or unit), each with its own
// credentials, access token and circuit breaker. Every request may name
// one in its identity field (over HTTP: in the body of POST /v1/otp and
// POST /v1/tokens:revoke, and as ?identity= on GET
// /v1/services/{service_id}/status and GET
// /v1/services/{service_id}/status:watch); empty means the caller's
// default. A watch polls as its identity, and shares a poller only with
// watches of the same service as the same identity. An authenticated
// caller may act only as the identities granted to it; with no caller
// authentication (loopback development) any configured identity may be
// used.
//
// Which reasons each RPC can return is listed on the RPC.

// Code generated by protoc-gen-go-grpc. DO NOT EDIT.
// versions:
// - protoc-gen-go-grpc v1.6.2
// - protoc             (unknown)
// source: radkit/access/v1/access.proto

package accessv1

import (
	context "context"
	grpc "google.golang.org/grpc"
	codes "google.golang.org/grpc/codes"
	status "google.golang.org/grpc/status"
)

// This is a compile-time assertion to ensure that this generated file
// is compatible with the grpc package it is being compiled against.
// Requires gRPC-Go v1.64.0 or later.
const _ = grpc.SupportPackageIsVersion9

const (
	AccessService_GenerateOTP_FullMethodName        = "/radkit.access.v1.AccessService/GenerateOTP"
	AccessService_GetServiceStatus_FullMethodName   = "/radkit.access.v1.AccessService/GetServiceStatus"
	AccessService_RevokeToken_FullMethodName        = "/radkit.access.v1.AccessService/RevokeToken"
	AccessService_WatchServiceStatus_FullMethodName = "/radkit.access.v1.AccessService/WatchServiceStatus"
)

// AccessServiceClient is the client API for AccessService service.
//
// For semantics around ctx use and closing/ending streaming RPCs, please refer to https://pkg.go.dev/google.golang.org/grpc/?tab=doc#ClientConn.NewStream.
//
// AccessService mints enrollment one-time passwords, reports service status
// and revokes access tokens on RADKit Access Cloud on the caller's behalf.
type AccessServiceClient interface {
	// GenerateOTP requests a new service one-time password (OTP) that enrolls a
	// RADKit service for an endpoint.
	//
	// Upstream call: POST {base}/public/otp/certificate with JSON
	// {owner, endpoint_id, description}, answered by {otp}.
	//
	// Each call mints a new OTP unless request_id is set (see
	// GenerateOTPRequest.request_id). Errors: INVALID_REQUEST,
	// REQUEST_ID_REUSED (INVALID_ARGUMENT: the request_id was used with other
	// fields), TOO_MANY_REQUEST_IDS (RESOURCE_EXHAUSTED, with RetryInfo: the
	// caller holds as many request_ids as it may, or, as a last resort, the
	// facade does), STATE_UNAVAILABLE (UNAVAILABLE, with RetryInfo: with
	// request_id, while the facade's shared state store is unreachable),
	// STATE_LOST (UNAVAILABLE, with RetryInfo: with a request_id not found
	// after the shared state store lost data), STATE_KEY_UNKNOWN (INTERNAL),
	// UPSTREAM_BAD_REQUEST,
	// UPSTREAM_PERMISSION_DENIED, UPSTREAM_RATE_LIMITED,
	// UPSTREAM_CREDENTIALS_REJECTED, UPSTREAM_UNAVAILABLE, UPSTREAM_ERROR,
	// UPSTREAM_MALFORMED_RESPONSE, UPSTREAM_TIMEOUT.
	GenerateOTP(ctx context.Context, in *GenerateOTPRequest, opts ...grpc.CallOption) (*GenerateOTPResponse, error)
	// GetServiceStatus reports whether a registered RADKit service is active
	// and online.
	//
	// Upstream call: GET {base}/public/admin/service/status/{service_id},
	// answered by {service_id, active, online}. Safe to retry.
	//
	// Errors: INVALID_REQUEST, UPSTREAM_NOT_FOUND (unknown service ID),
	// UPSTREAM_BAD_REQUEST, UPSTREAM_PERMISSION_DENIED, UPSTREAM_RATE_LIMITED,
	// UPSTREAM_CREDENTIALS_REJECTED, UPSTREAM_UNAVAILABLE, UPSTREAM_ERROR,
	// UPSTREAM_MALFORMED_RESPONSE, UPSTREAM_TIMEOUT.
	GetServiceStatus(ctx context.Context, in *GetServiceStatusRequest, opts ...grpc.CallOption) (*GetServiceStatusResponse, error)
	// RevokeToken revokes a RADKit Access Cloud access token, so that the
	// upstream refuses it from then on.
	//
	// Upstream call: POST {revocation_endpoint}?token={token} with the
	// facade's client credentials (HTTP Basic), answered by 204 No Content.
	// The revocation endpoint is found by OIDC discovery.
	//
	// Errors: INVALID_REQUEST, UPSTREAM_BAD_REQUEST (token unknown or expired),
	// REVOCATION_NOT_CONFIGURED (the facade runs with an API token and no
	// client credentials), UPSTREAM_RATE_LIMITED,
	// UPSTREAM_CREDENTIALS_REJECTED, UPSTREAM_UNAVAILABLE, UPSTREAM_ERROR,
	// UPSTREAM_TIMEOUT.
	RevokeToken(ctx context.Context, in *RevokeTokenRequest, opts ...grpc.CallOption) (*RevokeTokenResponse, error)
	// WatchServiceStatus streams a registered RADKit service's status: the
	// current status first, then one message on every change, and a
	// heartbeat with the unchanged status every heartbeat interval (30 s by
	// default) so that proxies with idle timeouts keep quiet streams open.
	// With until set, the stream ends with OK as soon as the condition holds
	// (the current status included): the whole enrollment wait is one call.
	//
	// Upstream call: the one of GetServiceStatus, made by the facade on a
	// fixed interval (5 s by default) per watched service, shared by every
	// watcher of that service on a replica and with concurrent
	// GetServiceStatus calls. A service nobody watches is not polled.
	//
	// Transient upstream failures (UPSTREAM_UNAVAILABLE,
	// UPSTREAM_RATE_LIMITED, UPSTREAM_CIRCUIT_OPEN, UPSTREAM_THROTTLED,
	// UPSTREAM_TIMEOUT of one poll) do not end the stream: polling backs off and the stream goes on
	// with the last known status. Over HTTP the stream is newline-delimited
	// JSON, one {"result": WatchServiceStatusResponse} object per line, and a
	// final {"error": Status} line if the stream fails.
	//
	// Errors: INVALID_REQUEST, TOO_MANY_WATCHES (RESOURCE_EXHAUSTED: the
	// caller or the replica has as many open watches as it may),
	// UPSTREAM_NOT_FOUND (unknown service ID, at once or later),
	// UPSTREAM_BAD_REQUEST, UPSTREAM_PERMISSION_DENIED,
	// UPSTREAM_CREDENTIALS_REJECTED, UPSTREAM_ERROR,
	// UPSTREAM_MALFORMED_RESPONSE, SHUTTING_DOWN (UNAVAILABLE, with
	// RetryInfo: the replica is shutting down; reconnect, to another
	// replica), and DEADLINE_EXCEEDED when the caller's deadline passes
	// first.
	WatchServiceStatus(ctx context.Context, in *WatchServiceStatusRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[WatchServiceStatusResponse], error)
}

type accessServiceClient struct {
	cc grpc.ClientConnInterface
}

func NewAccessServiceClient(cc grpc.ClientConnInterface) AccessServiceClient {
	return &accessServiceClient{cc}
}

func (c *accessServiceClient) GenerateOTP(ctx context.Context, in *GenerateOTPRequest, opts ...grpc.CallOption) (*GenerateOTPResponse, error) {
	cOpts := append([]grpc.CallOption{grpc.StaticMethod()}, opts...)
	out := new(GenerateOTPResponse)
	err := c.cc.Invoke(ctx, AccessService_GenerateOTP_FullMethodName, in, out, cOpts...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *accessServiceClient) GetServiceStatus(ctx context.Context, in *GetServiceStatusRequest, opts ...grpc.CallOption) (*GetServiceStatusResponse, error) {
	cOpts := append([]grpc.CallOption{grpc.StaticMethod()}, opts...)
	out := new(GetServiceStatusResponse)
	err := c.cc.Invoke(ctx, AccessService_GetServiceStatus_FullMethodName, in, out, cOpts...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *accessServiceClient) RevokeToken(ctx context.Context, in *RevokeTokenRequest, opts ...grpc.CallOption) (*RevokeTokenResponse, error) {
	cOpts := append([]grpc.CallOption{grpc.StaticMethod()}, opts...)
	out := new(RevokeTokenResponse)
	err := c.cc.Invoke(ctx, AccessService_RevokeToken_FullMethodName, in, out, cOpts...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *accessServiceClient) WatchServiceStatus(ctx context.Context, in *WatchServiceStatusRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[WatchServiceStatusResponse], error) {
	cOpts := append([]grpc.CallOption{grpc.StaticMethod()}, opts...)
	stream, err := c.cc.NewStream(ctx, &AccessService_ServiceDesc.Streams[0], AccessService_WatchServiceStatus_FullMethodName, cOpts...)
	if err != nil {
		return nil, err
	}
	x := &grpc.GenericClientStream[WatchServiceStatusRequest, WatchServiceStatusResponse]{ClientStream: stream}
	if err := x.ClientStream.SendMsg(in); err != nil {
		return nil, err
	}
	if err := x.ClientStream.CloseSend(); err != nil {
		return nil, err
	}
	return x, nil
}

// This type alias is provided for backwards compatibility with existing code that references the prior non-generic stream type by name.
type AccessService_WatchServiceStatusClient = grpc.ServerStreamingClient[WatchServiceStatusResponse]

// AccessServiceServer is the server API for AccessService service.
// All implementations must embed UnimplementedAccessServiceServer
// for forward compatibility.
//
// AccessService mints enrollment one-time passwords, reports service status
// and revokes access tokens on RADKit Access Cloud on the caller's behalf.
type AccessServiceServer interface {
	// GenerateOTP requests a new service one-time password (OTP) that enrolls a
	// RADKit service for an endpoint.
	//
	// Upstream call: POST {base}/public/otp/certificate with JSON
	// {owner, endpoint_id, description}, answered by {otp}.
	//
	// Each call mints a new OTP unless request_id is set (see
	// GenerateOTPRequest.request_id). Errors: INVALID_REQUEST,
	// REQUEST_ID_REUSED (INVALID_ARGUMENT: the request_id was used with other
	// fields), TOO_MANY_REQUEST_IDS (RESOURCE_EXHAUSTED, with RetryInfo: the
	// caller holds as many request_ids as it may, or, as a last resort, the
	// facade does), STATE_UNAVAILABLE (UNAVAILABLE, with RetryInfo: with
	// request_id, while the facade's shared state store is unreachable),
	// STATE_LOST (UNAVAILABLE, with RetryInfo: with a request_id not found
	// after the shared state store lost data), STATE_KEY_UNKNOWN (INTERNAL),
	// UPSTREAM_BAD_REQUEST,
	// UPSTREAM_PERMISSION_DENIED, UPSTREAM_RATE_LIMITED,
	// UPSTREAM_CREDENTIALS_REJECTED, UPSTREAM_UNAVAILABLE, UPSTREAM_ERROR,
	// UPSTREAM_MALFORMED_RESPONSE, UPSTREAM_TIMEOUT.
	GenerateOTP(context.Context, *GenerateOTPRequest) (*GenerateOTPResponse, error)
	// GetServiceStatus reports whether a registered RADKit service is active
	// and online.
	//
	// Upstream call: GET {base}/public/admin/service/status/{service_id},
	// answered by {service_id, active, online}. Safe to retry.
	//
	// Errors: INVALID_REQUEST, UPSTREAM_NOT_FOUND (unknown service ID),
	// UPSTREAM_BAD_REQUEST, UPSTREAM_PERMISSION_DENIED, UPSTREAM_RATE_LIMITED,
	// UPSTREAM_CREDENTIALS_REJECTED, UPSTREAM_UNAVAILABLE, UPSTREAM_ERROR,
	// UPSTREAM_MALFORMED_RESPONSE, UPSTREAM_TIMEOUT.
	GetServiceStatus(context.Context, *GetServiceStatusRequest) (*GetServiceStatusResponse, error)
	// RevokeToken revokes a RADKit Access Cloud access token, so that the
	// upstream refuses it from then on.
	//
	// Upstream call: POST {revocation_endpoint}?token={token} with the
	// facade's client credentials (HTTP Basic), answered by 204 No Content.
	// The revocation endpoint is found by OIDC discovery.
	//
	// Errors: INVALID_REQUEST, UPSTREAM_BAD_REQUEST (token unknown or expired),
	// REVOCATION_NOT_CONFIGURED (the facade runs with an API token and no
	// client credentials), UPSTREAM_RATE_LIMITED,
	// UPSTREAM_CREDENTIALS_REJECTED, UPSTREAM_UNAVAILABLE, UPSTREAM_ERROR,
	// UPSTREAM_TIMEOUT.
	RevokeToken(context.Context, *RevokeTokenRequest) (*RevokeTokenResponse, error)
	// WatchServiceStatus streams a registered RADKit service's status: the
	// current status first, then one message on every change, and a
	// heartbeat with the unchanged status every heartbeat interval (30 s by
	// default) so that proxies with idle timeouts keep quiet streams open.
	// With until set, the stream ends with OK as soon as the condition holds
	// (the current status included): the whole enrollment wait is one call.
	//
	// Upstream call: the one of GetServiceStatus, made by the facade on a
	// fixed interval (5 s by default) per watched service, shared by every
	// watcher of that service on a replica and with concurrent
	// GetServiceStatus calls. A service nobody watches is not polled.
	//
	// Transient upstream failures (UPSTREAM_UNAVAILABLE,
	// UPSTREAM_RATE_LIMITED, UPSTREAM_CIRCUIT_OPEN, UPSTREAM_THROTTLED,
	// UPSTREAM_TIMEOUT of one poll) do not end the stream: polling backs off and the stream goes on
	// with the last known status. Over HTTP the stream is newline-delimited
	// JSON, one {"result": WatchServiceStatusResponse} object per line, and a
	// final {"error": Status} line if the stream fails.
	//
	// Errors: INVALID_REQUEST, TOO_MANY_WATCHES (RESOURCE_EXHAUSTED: the
	// caller or the replica has as many open watches as it may),
	// UPSTREAM_NOT_FOUND (unknown service ID, at once or later),
	// UPSTREAM_BAD_REQUEST, UPSTREAM_PERMISSION_DENIED,
	// UPSTREAM_CREDENTIALS_REJECTED, UPSTREAM_ERROR,
	// UPSTREAM_MALFORMED_RESPONSE, SHUTTING_DOWN (UNAVAILABLE, with
	// RetryInfo: the replica is shutting down; reconnect, to another
	// replica), and DEADLINE_EXCEEDED when the caller's deadline passes
	// first.
	WatchServiceStatus(*WatchServiceStatusRequest, grpc.ServerStreamingServer[WatchServiceStatusResponse]) error
	mustEmbedUnimplementedAccessServiceServer()
}

// UnimplementedAccessServiceServer must be embedded to have
// forward compatible implementations.
//
// NOTE: this should be embedded by value instead of pointer to avoid a nil
// pointer dereference when methods are called.
type UnimplementedAccessServiceServer struct{}

func (UnimplementedAccessServiceServer) GenerateOTP(context.Context, *GenerateOTPRequest) (*GenerateOTPResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method GenerateOTP not implemented")
}
func (UnimplementedAccessServiceServer) GetServiceStatus(context.Context, *GetServiceStatusRequest) (*GetServiceStatusResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method GetServiceStatus not implemented")
}
func (UnimplementedAccessServiceServer) RevokeToken(context.Context, *RevokeTokenRequest) (*RevokeTokenResponse, error) {
	return nil, status.Error(codes.Unimplemented, "method RevokeToken not implemented")
}
func (UnimplementedAccessServiceServer) WatchServiceStatus(*WatchServiceStatusRequest, grpc.ServerStreamingServer[WatchServiceStatusResponse]) error {
	return status.Error(codes.Unimplemented, "method WatchServiceStatus not implemented")
}
func (UnimplementedAccessServiceServer) mustEmbedUnimplementedAccessServiceServer() {}
func (UnimplementedAccessServiceServer) testEmbeddedByValue()                       {}

// UnsafeAccessServiceServer may be embedded to opt out of forward compatibility for this service.
// Use of this interface is not recommended, as added methods to AccessServiceServer will
// result in compilation errors.
type UnsafeAccessServiceServer interface {
	mustEmbedUnimplementedAccessServiceServer()
}

func RegisterAccessServiceServer(s grpc.ServiceRegistrar, srv AccessServiceServer) {
	// If the following call panics, it indicates UnimplementedAccessServiceServer was
	// embedded by pointer and is nil.  This will cause panics if an
	// unimplemented method is ever invoked, so we test this at initialization
	// time to prevent it from happening at runtime later due to I/O.
	if t, ok := srv.(interface{ testEmbeddedByValue() }); ok {
		t.testEmbeddedByValue()
	}
	s.RegisterService(&AccessService_ServiceDesc, srv)
}

func _AccessService_GenerateOTP_Handler(srv interface{}, ctx context.Context, dec func(interface{}) error, interceptor grpc.UnaryServerInterceptor) (interface{}, error) {
	in := new(GenerateOTPRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(AccessServiceServer).GenerateOTP(ctx, in)
	}
	info := &grpc.UnaryServerInfo{
		Server:     srv,
		FullMethod: AccessService_GenerateOTP_FullMethodName,
	}
	handler := func(ctx context.Context, req interface{}) (interface{}, error) {
		return srv.(AccessServiceServer).GenerateOTP(ctx, req.(*GenerateOTPRequest))
	}
	return interceptor(ctx, in, info, handler)
}

func _AccessService_GetServiceStatus_Handler(srv interface{}, ctx context.Context, dec func(interface{}) error, interceptor grpc.UnaryServerInterceptor) (interface{}, error) {
	in := new(GetServiceStatusRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(AccessServiceServer).GetServiceStatus(ctx, in)
	}
	info := &grpc.UnaryServerInfo{
		Server:     srv,
		FullMethod: AccessService_GetServiceStatus_FullMethodName,
	}
	handler := func(ctx context.Context, req interface{}) (interface{}, error) {
		return srv.(AccessServiceServer).GetServiceStatus(ctx, req.(*GetServiceStatusRequest))
	}
	return interceptor(ctx, in, info, handler)
}

func _AccessService_RevokeToken_Handler(srv interface{}, ctx context.Context, dec func(interface{}) error, interceptor grpc.UnaryServerInterceptor) (interface{}, error) {
	in := new(RevokeTokenRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(AccessServiceServer).RevokeToken(ctx, in)
	}
	info := &grpc.UnaryServerInfo{
		Server:     srv,
		FullMethod: AccessService_RevokeToken_FullMethodName,
	}
	handler := func(ctx context.Context, req interface{}) (interface{}, error) {
		return srv.(AccessServiceServer).RevokeToken(ctx, req.(*RevokeTokenRequest))
	}
	return interceptor(ctx, in, info, handler)
}

func _AccessService_WatchServiceStatus_Handler(srv interface{}, stream grpc.ServerStream) error {
	m := new(WatchServiceStatusRequest)
	if err := stream.RecvMsg(m); err != nil {
		return err
	}
	return srv.(AccessServiceServer).WatchServiceStatus(m, &grpc.GenericServerStream[WatchServiceStatusRequest, WatchServiceStatusResponse]{ServerStream: stream})
}

// This type alias is provided for backwards compatibility with existing code that references the prior non-generic stream type by name.
type AccessService_WatchServiceStatusServer = grpc.ServerStreamingServer[WatchServiceStatusResponse]

// AccessService_ServiceDesc is the grpc.ServiceDesc for AccessService service.
// It's only intended for direct use with grpc.RegisterService,
// and not to be introspected or modified (even as a copy)
var AccessService_ServiceDesc = grpc.ServiceDesc{
	ServiceName: "radkit.access.v1.AccessService",
	HandlerType: (*AccessServiceServer)(nil),
	Methods: []grpc.MethodDesc{
		{
			MethodName: "GenerateOTP",
			Handler:    _AccessService_GenerateOTP_Handler,
		},
		{
			MethodName: "GetServiceStatus",
			Handler:    _AccessService_GetServiceStatus_Handler,
		},
		{
			MethodName: "RevokeToken",
			Handler:    _AccessService_RevokeToken_Handler,
		},
	},
	Streams: []grpc.StreamDesc{
		{
			StreamName:    "WatchServiceStatus",
			Handler:       _AccessService_WatchServiceStatus_Handler,
			ServerStreams: true,
		},
	},
	Metadata: "radkit/access/v1/access.proto",
}
