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

// Code generated by protoc-gen-go. DO NOT EDIT.
// versions:
// 	protoc-gen-go v1.36.12-devel
// 	protoc        (unknown)
// source: radkit/access/v1/access.proto

package accessv1

import (
	_ "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2/options"
	_ "google.golang.org/genproto/googleapis/api/annotations"
	protoreflect "google.golang.org/protobuf/reflect/protoreflect"
	protoimpl "google.golang.org/protobuf/runtime/protoimpl"
	timestamppb "google.golang.org/protobuf/types/known/timestamppb"
	reflect "reflect"
	sync "sync"
	unsafe "unsafe"
)

const (
	// Verify that this generated code is sufficiently up-to-date.
	_ = protoimpl.EnforceVersion(20 - protoimpl.MinVersion)
	// Verify that runtime/protoimpl is sufficiently up-to-date.
	_ = protoimpl.EnforceVersion(protoimpl.MaxVersion - 20)
)

// Until is a condition on the watched status.
type WatchServiceStatusRequest_Until int32

const (
	// No condition: stream until the caller leaves.
	WatchServiceStatusRequest_UNTIL_UNSPECIFIED WatchServiceStatusRequest_Until = 0
	// End when the service is online.
	WatchServiceStatusRequest_UNTIL_ONLINE WatchServiceStatusRequest_Until = 1
	// End when the service is offline.
	WatchServiceStatusRequest_UNTIL_OFFLINE WatchServiceStatusRequest_Until = 2
	// End when the service is active.
	WatchServiceStatusRequest_UNTIL_ACTIVE WatchServiceStatusRequest_Until = 3
	// End when the service is inactive.
	WatchServiceStatusRequest_UNTIL_INACTIVE WatchServiceStatusRequest_Until = 4
)

// Enum value maps for WatchServiceStatusRequest_Until.
var (
	WatchServiceStatusRequest_Until_name = map[int32]string{
		0: "UNTIL_UNSPECIFIED",
		1: "UNTIL_ONLINE",
		2: "UNTIL_OFFLINE",
		3: "UNTIL_ACTIVE",
		4: "UNTIL_INACTIVE",
	}
	WatchServiceStatusRequest_Until_value = map[string]int32{
		"UNTIL_UNSPECIFIED": 0,
		"UNTIL_ONLINE":      1,
		"UNTIL_OFFLINE":     2,
		"UNTIL_ACTIVE":      3,
		"UNTIL_INACTIVE":    4,
	}
)

func (x WatchServiceStatusRequest_Until) Enum() *WatchServiceStatusRequest_Until {
	p := new(WatchServiceStatusRequest_Until)
	*p = x
	return p
}

func (x WatchServiceStatusRequest_Until) String() string {
	return protoimpl.X.EnumStringOf(x.Descriptor(), protoreflect.EnumNumber(x))
}

func (WatchServiceStatusRequest_Until) Descriptor() protoreflect.EnumDescriptor {
	return file_radkit_access_v1_access_proto_enumTypes[0].Descriptor()
}

func (WatchServiceStatusRequest_Until) Type() protoreflect.EnumType {
	return &file_radkit_access_v1_access_proto_enumTypes[0]
}

func (x WatchServiceStatusRequest_Until) Number() protoreflect.EnumNumber {
	return protoreflect.EnumNumber(x)
}

// Deprecated: Use WatchServiceStatusRequest_Until.Descriptor instead.
func (WatchServiceStatusRequest_Until) EnumDescriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{6, 0}
}

// Kind says why a message was sent.
type WatchServiceStatusResponse_Kind int32

const (
	// Never sent.
	WatchServiceStatusResponse_KIND_UNSPECIFIED WatchServiceStatusResponse_Kind = 0
	// The first message of every stream: the status when the watch began.
	WatchServiceStatusResponse_KIND_INITIAL WatchServiceStatusResponse_Kind = 1
	// active or online differ from the previous message.
	WatchServiceStatusResponse_KIND_CHANGE WatchServiceStatusResponse_Kind = 2
	// Nothing changed; sent every heartbeat interval to keep the stream
	// alive through idle timeouts.
	WatchServiceStatusResponse_KIND_HEARTBEAT WatchServiceStatusResponse_Kind = 3
)

// Enum value maps for WatchServiceStatusResponse_Kind.
var (
	WatchServiceStatusResponse_Kind_name = map[int32]string{
		0: "KIND_UNSPECIFIED",
		1: "KIND_INITIAL",
		2: "KIND_CHANGE",
		3: "KIND_HEARTBEAT",
	}
	WatchServiceStatusResponse_Kind_value = map[string]int32{
		"KIND_UNSPECIFIED": 0,
		"KIND_INITIAL":     1,
		"KIND_CHANGE":      2,
		"KIND_HEARTBEAT":   3,
	}
)

func (x WatchServiceStatusResponse_Kind) Enum() *WatchServiceStatusResponse_Kind {
	p := new(WatchServiceStatusResponse_Kind)
	*p = x
	return p
}

func (x WatchServiceStatusResponse_Kind) String() string {
	return protoimpl.X.EnumStringOf(x.Descriptor(), protoreflect.EnumNumber(x))
}

func (WatchServiceStatusResponse_Kind) Descriptor() protoreflect.EnumDescriptor {
	return file_radkit_access_v1_access_proto_enumTypes[1].Descriptor()
}

func (WatchServiceStatusResponse_Kind) Type() protoreflect.EnumType {
	return &file_radkit_access_v1_access_proto_enumTypes[1]
}

func (x WatchServiceStatusResponse_Kind) Number() protoreflect.EnumNumber {
	return protoreflect.EnumNumber(x)
}

// Deprecated: Use WatchServiceStatusResponse_Kind.Descriptor instead.
func (WatchServiceStatusResponse_Kind) EnumDescriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{7, 0}
}

// GenerateOTPRequest asks for a one-time password for one endpoint.
type GenerateOTPRequest struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Required. Email address of the person or automation account that owns
	// the enrolled service, for example "user@example.com". Tagged identities
	// with a "+" alias are allowed ("automation+customer-a@example.com").
	// At most 254 characters. Sent upstream as "owner".
	Owner string `protobuf:"bytes,1,opt,name=owner,proto3" json:"owner,omitempty"`
	// Required. Identifier of the endpoint the service is enrolled for. 1 to
	// 256 characters, no control characters. Sent upstream as "endpoint_id".
	EndpointId string `protobuf:"bytes,2,opt,name=endpoint_id,json=endpointId,proto3" json:"endpoint_id,omitempty"`
	// Optional. Free text saying what the OTP is for, kept upstream for audit.
	// At most 1024 characters, no control characters other than tab and
	// newline. Sent upstream as "description".
	Description string `protobuf:"bytes,3,opt,name=description,proto3" json:"description,omitempty"`
	// Optional idempotency key (AIP-155). When set, a repeat of the request
	// with the same request_id and the same owner, endpoint_id, description
	// and identity (an empty identity counts as the one it resolves to)
	// within 10 minutes returns the OTP of the first call without minting a
	// new one, and concurrent duplicates share one upstream call; the same
	// request_id with different fields is refused with INVALID_ARGUMENT
	// (reason REQUEST_ID_REUSED). The 10 minutes count from the first
	// success; request_ids are scoped per authenticated caller; a failed call
	// is not remembered, so retrying it with the same request_id calls the
	// upstream again. Each caller may have a bounded number of request_ids
	// remembered or in flight at once (10,000 by default, set by the
	// facade's operator); a new request_id beyond it is refused with
	// RESOURCE_EXHAUSTED (reason TOO_MANY_REQUEST_IDS, RetryInfo until the
	// caller's oldest expires) without affecting other callers, and the
	// facade as a whole remembers at most 100,000. A client sending a new
	// request_id per logical request at R requests per second holds about
	// R x 600. A UUID is recommended; at most 128 characters of
	// letters, digits, "-", "_" and ".", and not "." or "..". Never sent
	// upstream.
	RequestId string `protobuf:"bytes,4,opt,name=request_id,json=requestId,proto3" json:"request_id,omitempty"`
	// Optional. The upstream identity to act as: the name of an identity in
	// the facade's identities file (1 to 63 characters: a lower-case letter
	// or digit, then lower-case letters, digits, ".", "_" and "-"), for
	// example "customer-a". Empty means the caller's default identity (the
	// first one granted to it; "default" for a facade with one identity).
	// An identity the caller is not granted, and one that does not exist,
	// are both refused with PERMISSION_DENIED (reason IDENTITY_NOT_GRANTED)
	// and the same message, before anything is sent upstream. Never sent
	// upstream.
	Identity      string `protobuf:"bytes,5,opt,name=identity,proto3" json:"identity,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *GenerateOTPRequest) Reset() {
	*x = GenerateOTPRequest{}
	mi := &file_radkit_access_v1_access_proto_msgTypes[0]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *GenerateOTPRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*GenerateOTPRequest) ProtoMessage() {}

func (x *GenerateOTPRequest) ProtoReflect() protoreflect.Message {
	mi := &file_radkit_access_v1_access_proto_msgTypes[0]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use GenerateOTPRequest.ProtoReflect.Descriptor instead.
func (*GenerateOTPRequest) Descriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{0}
}

func (x *GenerateOTPRequest) GetOwner() string {
	if x != nil {
		return x.Owner
	}
	return ""
}

func (x *GenerateOTPRequest) GetEndpointId() string {
	if x != nil {
		return x.EndpointId
	}
	return ""
}

func (x *GenerateOTPRequest) GetDescription() string {
	if x != nil {
		return x.Description
	}
	return ""
}

func (x *GenerateOTPRequest) GetRequestId() string {
	if x != nil {
		return x.RequestId
	}
	return ""
}

func (x *GenerateOTPRequest) GetIdentity() string {
	if x != nil {
		return x.Identity
	}
	return ""
}

// GenerateOTPResponse carries the minted one-time password.
type GenerateOTPResponse struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The one-time password, for example "abcd-1234-efgh-5678". Treat it as a
	// secret: hand it only to the service being enrolled. From upstream "otp";
	// never empty.
	Otp           string `protobuf:"bytes,1,opt,name=otp,proto3" json:"otp,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *GenerateOTPResponse) Reset() {
	*x = GenerateOTPResponse{}
	mi := &file_radkit_access_v1_access_proto_msgTypes[1]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *GenerateOTPResponse) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*GenerateOTPResponse) ProtoMessage() {}

func (x *GenerateOTPResponse) ProtoReflect() protoreflect.Message {
	mi := &file_radkit_access_v1_access_proto_msgTypes[1]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use GenerateOTPResponse.ProtoReflect.Descriptor instead.
func (*GenerateOTPResponse) Descriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{1}
}

func (x *GenerateOTPResponse) GetOtp() string {
	if x != nil {
		return x.Otp
	}
	return ""
}

// GetServiceStatusRequest names the service to look up.
type GetServiceStatusRequest struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Required. The RADKit service ID, for example "1ryq-e8n8-5g5n". 1 to 128
	// characters of letters, digits, "-", "_" and ".". Sent upstream as a
	// single, escaped path segment.
	ServiceId string `protobuf:"bytes,1,opt,name=service_id,json=serviceId,proto3" json:"service_id,omitempty"`
	// Optional. The upstream identity to act as: the name of an identity in
	// the facade's identities file (1 to 63 characters: a lower-case letter
	// or digit, then lower-case letters, digits, ".", "_" and "-"), for
	// example "customer-a". Empty means the caller's default identity (the
	// first one granted to it; "default" for a facade with one identity).
	// An identity the caller is not granted, and one that does not exist,
	// are both refused with PERMISSION_DENIED (reason IDENTITY_NOT_GRANTED)
	// and the same message, before anything is sent upstream. Never sent
	// upstream.
	Identity      string `protobuf:"bytes,2,opt,name=identity,proto3" json:"identity,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *GetServiceStatusRequest) Reset() {
	*x = GetServiceStatusRequest{}
	mi := &file_radkit_access_v1_access_proto_msgTypes[2]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *GetServiceStatusRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*GetServiceStatusRequest) ProtoMessage() {}

func (x *GetServiceStatusRequest) ProtoReflect() protoreflect.Message {
	mi := &file_radkit_access_v1_access_proto_msgTypes[2]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use GetServiceStatusRequest.ProtoReflect.Descriptor instead.
func (*GetServiceStatusRequest) Descriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{2}
}

func (x *GetServiceStatusRequest) GetServiceId() string {
	if x != nil {
		return x.ServiceId
	}
	return ""
}

func (x *GetServiceStatusRequest) GetIdentity() string {
	if x != nil {
		return x.Identity
	}
	return ""
}

// GetServiceStatusResponse is the service's status as the upstream reports it.
type GetServiceStatusResponse struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The service ID the upstream answered for.
	ServiceId string `protobuf:"bytes,1,opt,name=service_id,json=serviceId,proto3" json:"service_id,omitempty"`
	// Whether the service is active (enrolled and enabled) on RADKit Access.
	Active bool `protobuf:"varint,2,opt,name=active,proto3" json:"active,omitempty"`
	// Whether the service is currently connected to RADKit Access Cloud.
	Online        bool `protobuf:"varint,3,opt,name=online,proto3" json:"online,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *GetServiceStatusResponse) Reset() {
	*x = GetServiceStatusResponse{}
	mi := &file_radkit_access_v1_access_proto_msgTypes[3]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *GetServiceStatusResponse) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*GetServiceStatusResponse) ProtoMessage() {}

func (x *GetServiceStatusResponse) ProtoReflect() protoreflect.Message {
	mi := &file_radkit_access_v1_access_proto_msgTypes[3]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use GetServiceStatusResponse.ProtoReflect.Descriptor instead.
func (*GetServiceStatusResponse) Descriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{3}
}

func (x *GetServiceStatusResponse) GetServiceId() string {
	if x != nil {
		return x.ServiceId
	}
	return ""
}

func (x *GetServiceStatusResponse) GetActive() bool {
	if x != nil {
		return x.Active
	}
	return false
}

func (x *GetServiceStatusResponse) GetOnline() bool {
	if x != nil {
		return x.Online
	}
	return false
}

// RevokeTokenRequest names the access token to revoke.
type RevokeTokenRequest struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Required. The access token to revoke, as issued by RADKit Access Cloud
	// (a JWT). 1 to 8192 printable ASCII characters. Sent upstream as the
	// "token" query parameter; never logged.
	Token string `protobuf:"bytes,1,opt,name=token,proto3" json:"token,omitempty"`
	// Optional. The upstream identity to act as: the name of an identity in
	// the facade's identities file (1 to 63 characters: a lower-case letter
	// or digit, then lower-case letters, digits, ".", "_" and "-"), for
	// example "customer-a". Empty means the caller's default identity (the
	// first one granted to it; "default" for a facade with one identity).
	// An identity the caller is not granted, and one that does not exist,
	// are both refused with PERMISSION_DENIED (reason IDENTITY_NOT_GRANTED)
	// and the same message, before anything is sent upstream. The token is
	// revoked with this identity's client credentials. Never sent upstream.
	Identity      string `protobuf:"bytes,2,opt,name=identity,proto3" json:"identity,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *RevokeTokenRequest) Reset() {
	*x = RevokeTokenRequest{}
	mi := &file_radkit_access_v1_access_proto_msgTypes[4]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *RevokeTokenRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*RevokeTokenRequest) ProtoMessage() {}

func (x *RevokeTokenRequest) ProtoReflect() protoreflect.Message {
	mi := &file_radkit_access_v1_access_proto_msgTypes[4]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use RevokeTokenRequest.ProtoReflect.Descriptor instead.
func (*RevokeTokenRequest) Descriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{4}
}

func (x *RevokeTokenRequest) GetToken() string {
	if x != nil {
		return x.Token
	}
	return ""
}

func (x *RevokeTokenRequest) GetIdentity() string {
	if x != nil {
		return x.Identity
	}
	return ""
}

// RevokeTokenResponse is empty: the token was revoked.
type RevokeTokenResponse struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *RevokeTokenResponse) Reset() {
	*x = RevokeTokenResponse{}
	mi := &file_radkit_access_v1_access_proto_msgTypes[5]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *RevokeTokenResponse) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*RevokeTokenResponse) ProtoMessage() {}

func (x *RevokeTokenResponse) ProtoReflect() protoreflect.Message {
	mi := &file_radkit_access_v1_access_proto_msgTypes[5]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use RevokeTokenResponse.ProtoReflect.Descriptor instead.
func (*RevokeTokenResponse) Descriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{5}
}

// WatchServiceStatusRequest names the service to watch, and when to stop.
type WatchServiceStatusRequest struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// Required. The RADKit service ID, as in GetServiceStatusRequest: 1 to 128
	// characters of letters, digits, "-", "_" and ".".
	ServiceId string `protobuf:"bytes,1,opt,name=service_id,json=serviceId,proto3" json:"service_id,omitempty"`
	// Optional. A condition that ends the stream with OK as soon as it holds.
	// Unset (UNTIL_UNSPECIFIED), the stream goes on until the caller leaves,
	// its deadline passes, or an error ends it.
	Until WatchServiceStatusRequest_Until `protobuf:"varint,2,opt,name=until,proto3,enum=radkit.access.v1.WatchServiceStatusRequest_Until" json:"until,omitempty"`
	// Optional. The upstream identity to act as: the name of an identity in
	// the facade's identities file (1 to 63 characters: a lower-case letter
	// or digit, then lower-case letters, digits, ".", "_" and "-"), for
	// example "customer-a". Empty means the caller's default identity (the
	// first one granted to it; "default" for a facade with one identity).
	// An identity the caller is not granted, and one that does not exist,
	// are both refused with PERMISSION_DENIED (reason IDENTITY_NOT_GRANTED)
	// and the same message, before the stream starts and before anything is
	// sent upstream. The service is polled as this identity, and a poller is
	// shared only among watches of the same service as the same identity.
	// Over HTTP: ?identity= on GET /v1/services/{service_id}/status:watch.
	// Never sent upstream.
	Identity      string `protobuf:"bytes,3,opt,name=identity,proto3" json:"identity,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *WatchServiceStatusRequest) Reset() {
	*x = WatchServiceStatusRequest{}
	mi := &file_radkit_access_v1_access_proto_msgTypes[6]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *WatchServiceStatusRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*WatchServiceStatusRequest) ProtoMessage() {}

func (x *WatchServiceStatusRequest) ProtoReflect() protoreflect.Message {
	mi := &file_radkit_access_v1_access_proto_msgTypes[6]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use WatchServiceStatusRequest.ProtoReflect.Descriptor instead.
func (*WatchServiceStatusRequest) Descriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{6}
}

func (x *WatchServiceStatusRequest) GetServiceId() string {
	if x != nil {
		return x.ServiceId
	}
	return ""
}

func (x *WatchServiceStatusRequest) GetUntil() WatchServiceStatusRequest_Until {
	if x != nil {
		return x.Until
	}
	return WatchServiceStatusRequest_UNTIL_UNSPECIFIED
}

func (x *WatchServiceStatusRequest) GetIdentity() string {
	if x != nil {
		return x.Identity
	}
	return ""
}

// WatchServiceStatusResponse is one message of a status watch: the
// service's status, when it was observed, and why it was sent.
type WatchServiceStatusResponse struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// The service ID the upstream answered for.
	ServiceId string `protobuf:"bytes,1,opt,name=service_id,json=serviceId,proto3" json:"service_id,omitempty"`
	// Whether the service is active (enrolled and enabled) on RADKit Access.
	Active bool `protobuf:"varint,2,opt,name=active,proto3" json:"active,omitempty"`
	// Whether the service is currently connected to RADKit Access Cloud.
	Online bool `protobuf:"varint,3,opt,name=online,proto3" json:"online,omitempty"`
	// When the facade last got this status from the upstream. During
	// transient upstream failures heartbeats carry the last known status and
	// so an observed_time that no longer advances.
	ObservedTime *timestamppb.Timestamp `protobuf:"bytes,4,opt,name=observed_time,json=observedTime,proto3" json:"observed_time,omitempty"`
	// Why this message was sent.
	Kind          WatchServiceStatusResponse_Kind `protobuf:"varint,5,opt,name=kind,proto3,enum=radkit.access.v1.WatchServiceStatusResponse_Kind" json:"kind,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *WatchServiceStatusResponse) Reset() {
	*x = WatchServiceStatusResponse{}
	mi := &file_radkit_access_v1_access_proto_msgTypes[7]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *WatchServiceStatusResponse) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*WatchServiceStatusResponse) ProtoMessage() {}

func (x *WatchServiceStatusResponse) ProtoReflect() protoreflect.Message {
	mi := &file_radkit_access_v1_access_proto_msgTypes[7]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use WatchServiceStatusResponse.ProtoReflect.Descriptor instead.
func (*WatchServiceStatusResponse) Descriptor() ([]byte, []int) {
	return file_radkit_access_v1_access_proto_rawDescGZIP(), []int{7}
}

func (x *WatchServiceStatusResponse) GetServiceId() string {
	if x != nil {
		return x.ServiceId
	}
	return ""
}

func (x *WatchServiceStatusResponse) GetActive() bool {
	if x != nil {
		return x.Active
	}
	return false
}

func (x *WatchServiceStatusResponse) GetOnline() bool {
	if x != nil {
		return x.Online
	}
	return false
}

func (x *WatchServiceStatusResponse) GetObservedTime() *timestamppb.Timestamp {
	if x != nil {
		return x.ObservedTime
	}
	return nil
}

func (x *WatchServiceStatusResponse) GetKind() WatchServiceStatusResponse_Kind {
	if x != nil {
		return x.Kind
	}
	return WatchServiceStatusResponse_KIND_UNSPECIFIED
}

var File_radkit_access_v1_access_proto protoreflect.FileDescriptor

const file_radkit_access_v1_access_proto_rawDesc = "" +
	"\n" +
	"\x1dradkit/access/v1/access.proto\x12\x10radkit.access.v1\x1a\x1cgoogle/api/annotations.proto\x1a\x1fgoogle/protobuf/timestamp.proto\x1a.protoc-gen-openapiv2/options/annotations.proto\"\xa8\x01\n" +
	"\x12GenerateOTPRequest\x12\x14\n" +
	"\x05owner\x18\x01 \x01(\tR\x05owner\x12\x1f\n" +
	"\vendpoint_id\x18\x02 \x01(\tR\n" +
	"endpointId\x12 \n" +
	"\vdescription\x18\x03 \x01(\tR\vdescription\x12\x1d\n" +
	"\n" +
	"request_id\x18\x04 \x01(\tR\trequestId\x12\x1a\n" +
	"\bidentity\x18\x05 \x01(\tR\bidentity\"'\n" +
	"\x13GenerateOTPResponse\x12\x10\n" +
	"\x03otp\x18\x01 \x01(\tR\x03otp\"T\n" +
	"\x17GetServiceStatusRequest\x12\x1d\n" +
	"\n" +
	"service_id\x18\x01 \x01(\tR\tserviceId\x12\x1a\n" +
	"\bidentity\x18\x02 \x01(\tR\bidentity\"i\n" +
	"\x18GetServiceStatusResponse\x12\x1d\n" +
	"\n" +
	"service_id\x18\x01 \x01(\tR\tserviceId\x12\x16\n" +
	"\x06active\x18\x02 \x01(\bR\x06active\x12\x16\n" +
	"\x06online\x18\x03 \x01(\bR\x06online\"F\n" +
	"\x12RevokeTokenRequest\x12\x14\n" +
	"\x05token\x18\x01 \x01(\tR\x05token\x12\x1a\n" +
	"\bidentity\x18\x02 \x01(\tR\bidentity\"\x15\n" +
	"\x13RevokeTokenResponse\"\x8a\x02\n" +
	"\x19WatchServiceStatusRequest\x12\x1d\n" +
	"\n" +
	"service_id\x18\x01 \x01(\tR\tserviceId\x12G\n" +
	"\x05until\x18\x02 \x01(\x0e21.radkit.access.v1.WatchServiceStatusRequest.UntilR\x05until\x12\x1a\n" +
	"\bidentity\x18\x03 \x01(\tR\bidentity\"i\n" +
	"\x05Until\x12\x15\n" +
	"\x11UNTIL_UNSPECIFIED\x10\x00\x12\x10\n" +
	"\fUNTIL_ONLINE\x10\x01\x12\x11\n" +
	"\rUNTIL_OFFLINE\x10\x02\x12\x10\n" +
	"\fUNTIL_ACTIVE\x10\x03\x12\x12\n" +
	"\x0eUNTIL_INACTIVE\x10\x04\"\xc8\x02\n" +
	"\x1aWatchServiceStatusResponse\x12\x1d\n" +
	"\n" +
	"service_id\x18\x01 \x01(\tR\tserviceId\x12\x16\n" +
	"\x06active\x18\x02 \x01(\bR\x06active\x12\x16\n" +
	"\x06online\x18\x03 \x01(\bR\x06online\x12?\n" +
	"\robserved_time\x18\x04 \x01(\v2\x1a.google.protobuf.TimestampR\fobservedTime\x12E\n" +
	"\x04kind\x18\x05 \x01(\x0e21.radkit.access.v1.WatchServiceStatusResponse.KindR\x04kind\"S\n" +
	"\x04Kind\x12\x14\n" +
	"\x10KIND_UNSPECIFIED\x10\x00\x12\x10\n" +
	"\fKIND_INITIAL\x10\x01\x12\x0f\n" +
	"\vKIND_CHANGE\x10\x02\x12\x12\n" +
	"\x0eKIND_HEARTBEAT\x10\x032\xc8j\n" +
	"\rAccessService\x12\xc9\x1b\n" +
	"\vGenerateOTP\x12$.radkit.access.v1.GenerateOTPRequest\x1a%.radkit.access.v1.GenerateOTPResponse\"\xec\x1a\x92A\xd6\x1aJ\xf4\x02\n" +
	"\x03400\x12\xec\x02\n" +
	"\xd1\x02Invalid request. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason INVALID_REQUEST, REQUEST_ID_REUSED or UPSTREAM_BAD_REQUEST. A google.rpc.BadRequest (\"@type\": \"type.googleapis.com/google.rpc.BadRequest\") names each invalid field.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\x94\x03\n" +
	"\x03401\x12\x8c\x03\n" +
	"\xde\x01No valid caller key or client certificate. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason CALLER_UNAUTHENTICATED.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\x90\x01\n" +
	"\x10WWW-Authenticate\x12|\n" +
	"rBearer realm=\"radkit-access-facade\" (RFC 6750), with error=\"invalid_token\" when credentials were sent and refused.\x12\x06stringJ\x98\x02\n" +
	"\x03403\x12\x90\x02\n" +
	"\xf5\x01The facade's upstream identity lacks the claim for this call. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_PERMISSION_DENIED.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xfe\x01\n" +
	"\x03413\x12\xf6\x01\n" +
	"\xdb\x01The request body is over the facade's limit. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason REQUEST_TOO_LARGE.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xe3\x03\n" +
	"\x03429\x12\xdb\x03\n" +
	"\xe2\x02Too many calls. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason CALLER_RATE_LIMITED, UPSTREAM_RATE_LIMITED or TOO_MANY_REQUEST_IDS. A google.rpc.RetryInfo (\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\") says after how long a retry may help.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\\\n" +
	"\vRetry-After\x12M\n" +
	"BSeconds to wait before retrying (the RetryInfo delay, rounded up).\x12\aintegerJ\x82\x02\n" +
	"\x03500\x12\xfa\x01\n" +
	"\xdf\x01The upstream failed. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_ERROR or UPSTREAM_MALFORMED_RESPONSE.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xe3\x04\n" +
	"\x03503\x12\xdb\x04\n" +
	"\xe2\x03The upstream is unavailable, or refused the facade's own credentials, or those have expired. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_UNAVAILABLE, UPSTREAM_CIRCUIT_OPEN, UPSTREAM_THROTTLED, UPSTREAM_CREDENTIALS_REJECTED or CREDENTIALS_EXPIRED. A google.rpc.RetryInfo (\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\") says after how long a retry may help.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\\\n" +
	"\vRetry-After\x12M\n" +
	"BSeconds to wait before retrying (the RetryInfo delay, rounded up).\x12\aintegerJ\x8b\x02\n" +
	"\x03504\x12\x83\x02\n" +
	"\xe8\x01The caller's deadline passed before the upstream answered. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_TIMEOUT.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Statusr\xca\x03\n" +
	"\xf2\x01\n" +
	"\fX-Request-ID\x12\xdf\x01Optional request ID (at most 128 characters of [A-Za-z0-9._:-]) to correlate the call with the facade's and the upstream's logs; one is generated when absent or malformed. Every answer carries the ID in use as X-Request-ID.\x18\x01\n" +
	"\xd2\x01\n" +
	"\x0fIdempotency-Key\x12\xbc\x01Optional idempotency key (IETF httpapi draft): taken as request_id when the body has none; a different request_id in the body is refused with 400 INVALID_REQUEST. Same rules as request_id.\x18\x01\x82\xd3\xe4\x93\x02\f:\x01*\"\a/v1/otp\x12\xd8\x19\n" +
	"\x10GetServiceStatus\x12).radkit.access.v1.GetServiceStatusRequest\x1a*.radkit.access.v1.GetServiceStatusResponse\"\xec\x18\x92A\xc0\x18J\xe1\x02\n" +
	"\x03400\x12\xd9\x02\n" +
	"\xbe\x02Invalid request. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason INVALID_REQUEST or UPSTREAM_BAD_REQUEST. A google.rpc.BadRequest (\"@type\": \"type.googleapis.com/google.rpc.BadRequest\") names each invalid field.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\x94\x03\n" +
	"\x03401\x12\x8c\x03\n" +
	"\xde\x01No valid caller key or client certificate. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason CALLER_UNAUTHENTICATED.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\x90\x01\n" +
	"\x10WWW-Authenticate\x12|\n" +
	"rBearer realm=\"radkit-access-facade\" (RFC 6750), with error=\"invalid_token\" when credentials were sent and refused.\x12\x06stringJ\x98\x02\n" +
	"\x03403\x12\x90\x02\n" +
	"\xf5\x01The facade's upstream identity lacks the claim for this call. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_PERMISSION_DENIED.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xe6\x01\n" +
	"\x03404\x12\xde\x01\n" +
	"\xc3\x01Unknown service ID. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_NOT_FOUND.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xcd\x03\n" +
	"\x03429\x12\xc5\x03\n" +
	"\xcc\x02Too many calls. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason CALLER_RATE_LIMITED or UPSTREAM_RATE_LIMITED. A google.rpc.RetryInfo (\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\") says after how long a retry may help.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\\\n" +
	"\vRetry-After\x12M\n" +
	"BSeconds to wait before retrying (the RetryInfo delay, rounded up).\x12\aintegerJ\x82\x02\n" +
	"\x03500\x12\xfa\x01\n" +
	"\xdf\x01The upstream failed. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_ERROR or UPSTREAM_MALFORMED_RESPONSE.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xe3\x04\n" +
	"\x03503\x12\xdb\x04\n" +
	"\xe2\x03The upstream is unavailable, or refused the facade's own credentials, or those have expired. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_UNAVAILABLE, UPSTREAM_CIRCUIT_OPEN, UPSTREAM_THROTTLED, UPSTREAM_CREDENTIALS_REJECTED or CREDENTIALS_EXPIRED. A google.rpc.RetryInfo (\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\") says after how long a retry may help.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\\\n" +
	"\vRetry-After\x12M\n" +
	"BSeconds to wait before retrying (the RetryInfo delay, rounded up).\x12\aintegerJ\x8b\x02\n" +
	"\x03504\x12\x83\x02\n" +
	"\xe8\x01The caller's deadline passed before the upstream answered. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_TIMEOUT.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Statusr\xf5\x01\n" +
	"\xf2\x01\n" +
	"\fX-Request-ID\x12\xdf\x01Optional request ID (at most 128 characters of [A-Za-z0-9._:-]) to correlate the call with the facade's and the upstream's logs; one is generated when absent or malformed. Every answer carries the ID in use as X-Request-ID.\x18\x01\x82\xd3\xe4\x93\x02\"\x12 /v1/services/{service_id}/status\x12\xf0\x17\n" +
	"\vRevokeToken\x12$.radkit.access.v1.RevokeTokenRequest\x1a%.radkit.access.v1.RevokeTokenResponse\"\x93\x17\x92A\xf3\x16J\x97\x03\n" +
	"\x03400\x12\x8f\x03\n" +
	"\xf4\x02Invalid request. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason INVALID_REQUEST, UPSTREAM_BAD_REQUEST (token unknown or expired) or REVOCATION_NOT_CONFIGURED. A google.rpc.BadRequest (\"@type\": \"type.googleapis.com/google.rpc.BadRequest\") names each invalid field.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\x94\x03\n" +
	"\x03401\x12\x8c\x03\n" +
	"\xde\x01No valid caller key or client certificate. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason CALLER_UNAUTHENTICATED.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\x90\x01\n" +
	"\x10WWW-Authenticate\x12|\n" +
	"rBearer realm=\"radkit-access-facade\" (RFC 6750), with error=\"invalid_token\" when credentials were sent and refused.\x12\x06stringJ\xfe\x01\n" +
	"\x03413\x12\xf6\x01\n" +
	"\xdb\x01The request body is over the facade's limit. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason REQUEST_TOO_LARGE.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xcd\x03\n" +
	"\x03429\x12\xc5\x03\n" +
	"\xcc\x02Too many calls. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason CALLER_RATE_LIMITED or UPSTREAM_RATE_LIMITED. A google.rpc.RetryInfo (\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\") says after how long a retry may help.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\\\n" +
	"\vRetry-After\x12M\n" +
	"BSeconds to wait before retrying (the RetryInfo delay, rounded up).\x12\aintegerJ\x82\x02\n" +
	"\x03500\x12\xfa\x01\n" +
	"\xdf\x01The upstream failed. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_ERROR or UPSTREAM_MALFORMED_RESPONSE.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xe3\x04\n" +
	"\x03503\x12\xdb\x04\n" +
	"\xe2\x03The upstream is unavailable, or refused the facade's own credentials, or those have expired. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_UNAVAILABLE, UPSTREAM_CIRCUIT_OPEN, UPSTREAM_THROTTLED, UPSTREAM_CREDENTIALS_REJECTED or CREDENTIALS_EXPIRED. A google.rpc.RetryInfo (\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\") says after how long a retry may help.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\\\n" +
	"\vRetry-After\x12M\n" +
	"BSeconds to wait before retrying (the RetryInfo delay, rounded up).\x12\aintegerJ\x8b\x02\n" +
	"\x03504\x12\x83\x02\n" +
	"\xe8\x01The caller's deadline passed before the upstream answered. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_TIMEOUT.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Statusr\xf5\x01\n" +
	"\xf2\x01\n" +
	"\fX-Request-ID\x12\xdf\x01Optional request ID (at most 128 characters of [A-Za-z0-9._:-]) to correlate the call with the facade's and the upstream's logs; one is generated when absent or malformed. Every answer carries the ID in use as X-Request-ID.\x18\x01\x82\xd3\xe4\x93\x02\x16:\x01*\"\x11/v1/tokens:revoke\x12\x9c\x1d\n" +
	"\x12WatchServiceStatus\x12+.radkit.access.v1.WatchServiceStatusRequest\x1a,.radkit.access.v1.WatchServiceStatusResponse\"\xa8\x1c\x92A\xf6\x1bJ\xbe\x03\n" +
	"\x03400\x12\xb6\x03\n" +
	"\x9b\x03Invalid request before the stream starts (later failures end the stream with a final {\"error\": Status} line). google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason INVALID_REQUEST or UPSTREAM_BAD_REQUEST. A google.rpc.BadRequest (\"@type\": \"type.googleapis.com/google.rpc.BadRequest\") names each invalid field.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\x94\x03\n" +
	"\x03401\x12\x8c\x03\n" +
	"\xde\x01No valid caller key or client certificate. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason CALLER_UNAUTHENTICATED.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\x90\x01\n" +
	"\x10WWW-Authenticate\x12|\n" +
	"rBearer realm=\"radkit-access-facade\" (RFC 6750), with error=\"invalid_token\" when credentials were sent and refused.\x12\x06stringJ\xe7\x02\n" +
	"\x03403\x12\xdf\x02\n" +
	"\xc4\x02The facade's upstream identity lacks the claim before the stream starts (later failures end the stream with a final {\"error\": Status} line). google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_PERMISSION_DENIED.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xc3\x02\n" +
	"\x03404\x12\xbb\x02\n" +
	"\xa0\x02Unknown service ID before the stream starts (later failures end the stream with a final {\"error\": Status} line). google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_NOT_FOUND.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\xd8\x03\n" +
	"\x03429\x12\xd0\x03\n" +
	"\xd7\x02Too many calls or open watches. google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason CALLER_RATE_LIMITED or TOO_MANY_WATCHES. A google.rpc.RetryInfo (\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\") says after how long a retry may help.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\\\n" +
	"\vRetry-After\x12M\n" +
	"BSeconds to wait before retrying (the RetryInfo delay, rounded up).\x12\aintegerJ\xdf\x02\n" +
	"\x03500\x12\xd7\x02\n" +
	"\xbc\x02The upstream failed before the stream starts (later failures end the stream with a final {\"error\": Status} line). google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason UPSTREAM_ERROR or UPSTREAM_MALFORMED_RESPONSE.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.StatusJ\x85\x05\n" +
	"\x03503\x12\xfd\x04\n" +
	"\x84\x04The replica is shutting down, or the upstream refused the facade's own credentials before the stream starts (later failures end the stream with a final {\"error\": Status} line). google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\") with reason SHUTTING_DOWN, UPSTREAM_CREDENTIALS_REJECTED or CREDENTIALS_EXPIRED. A google.rpc.RetryInfo (\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\") says after how long a retry may help.\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Status\x1a\\\n" +
	"\vRetry-After\x12M\n" +
	"BSeconds to wait before retrying (the RetryInfo delay, rounded up).\x12\aintegerJ\xae\x02\n" +
	"\x03504\x12\xa6\x02\n" +
	"\x8b\x02The caller's deadline passed before the stream starts (later failures end the stream with a final {\"error\": Status} line). google.rpc.Status. Its details hold a google.rpc.ErrorInfo (\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", domain \"radkit-access-facade\").\x12\x16\n" +
	"\x14\x1a\x12.google.rpc.Statusr\xf5\x01\n" +
	"\xf2\x01\n" +
	"\fX-Request-ID\x12\xdf\x01Optional request ID (at most 128 characters of [A-Za-z0-9._:-]) to correlate the call with the facade's and the upstream's logs; one is generated when absent or malformed. Every answer carries the ID in use as X-Request-ID.\x18\x01\x82\xd3\xe4\x93\x02(\x12&/v1/services/{service_id}/status:watch0\x01B\x92\x03\x92A\xc8\x02Z\xb4\x02\n" +
	"\xb1\x02\n" +
	"\tCallerKey\x12\xa3\x02\b\x02\x12\x8d\x02A caller API key, sent as \"Authorization: Bearer <key>\" (OpenAPI 2 has no bearer scheme: the value includes the \"Bearer \" prefix). Where the facade verifies client certificates (mutual TLS), a verified certificate authenticates the caller instead, and no key is needed.\x1a\rAuthorization \x02b\x0f\n" +
	"\r\n" +
	"\tCallerKey\x12\x00ZDgithub.com/radkit/radkit-access-facade/gen/radkit/access/v1;accessv1b\x06proto3"

var (
	file_radkit_access_v1_access_proto_rawDescOnce sync.Once
	file_radkit_access_v1_access_proto_rawDescData []byte
)

func file_radkit_access_v1_access_proto_rawDescGZIP() []byte {
	file_radkit_access_v1_access_proto_rawDescOnce.Do(func() {
		file_radkit_access_v1_access_proto_rawDescData = protoimpl.X.CompressGZIP(unsafe.Slice(unsafe.StringData(file_radkit_access_v1_access_proto_rawDesc), len(file_radkit_access_v1_access_proto_rawDesc)))
	})
	return file_radkit_access_v1_access_proto_rawDescData
}

var file_radkit_access_v1_access_proto_enumTypes = make([]protoimpl.EnumInfo, 2)
var file_radkit_access_v1_access_proto_msgTypes = make([]protoimpl.MessageInfo, 8)
var file_radkit_access_v1_access_proto_goTypes = []any{
	(WatchServiceStatusRequest_Until)(0), // 0: radkit.access.v1.WatchServiceStatusRequest.Until
	(WatchServiceStatusResponse_Kind)(0), // 1: radkit.access.v1.WatchServiceStatusResponse.Kind
	(*GenerateOTPRequest)(nil),           // 2: radkit.access.v1.GenerateOTPRequest
	(*GenerateOTPResponse)(nil),          // 3: radkit.access.v1.GenerateOTPResponse
	(*GetServiceStatusRequest)(nil),      // 4: radkit.access.v1.GetServiceStatusRequest
	(*GetServiceStatusResponse)(nil),     // 5: radkit.access.v1.GetServiceStatusResponse
	(*RevokeTokenRequest)(nil),           // 6: radkit.access.v1.RevokeTokenRequest
	(*RevokeTokenResponse)(nil),          // 7: radkit.access.v1.RevokeTokenResponse
	(*WatchServiceStatusRequest)(nil),    // 8: radkit.access.v1.WatchServiceStatusRequest
	(*WatchServiceStatusResponse)(nil),   // 9: radkit.access.v1.WatchServiceStatusResponse
	(*timestamppb.Timestamp)(nil),        // 10: google.protobuf.Timestamp
}
var file_radkit_access_v1_access_proto_depIdxs = []int32{
	0,  // 0: radkit.access.v1.WatchServiceStatusRequest.until:type_name -> radkit.access.v1.WatchServiceStatusRequest.Until
	10, // 1: radkit.access.v1.WatchServiceStatusResponse.observed_time:type_name -> google.protobuf.Timestamp
	1,  // 2: radkit.access.v1.WatchServiceStatusResponse.kind:type_name -> radkit.access.v1.WatchServiceStatusResponse.Kind
	2,  // 3: radkit.access.v1.AccessService.GenerateOTP:input_type -> radkit.access.v1.GenerateOTPRequest
	4,  // 4: radkit.access.v1.AccessService.GetServiceStatus:input_type -> radkit.access.v1.GetServiceStatusRequest
	6,  // 5: radkit.access.v1.AccessService.RevokeToken:input_type -> radkit.access.v1.RevokeTokenRequest
	8,  // 6: radkit.access.v1.AccessService.WatchServiceStatus:input_type -> radkit.access.v1.WatchServiceStatusRequest
	3,  // 7: radkit.access.v1.AccessService.GenerateOTP:output_type -> radkit.access.v1.GenerateOTPResponse
	5,  // 8: radkit.access.v1.AccessService.GetServiceStatus:output_type -> radkit.access.v1.GetServiceStatusResponse
	7,  // 9: radkit.access.v1.AccessService.RevokeToken:output_type -> radkit.access.v1.RevokeTokenResponse
	9,  // 10: radkit.access.v1.AccessService.WatchServiceStatus:output_type -> radkit.access.v1.WatchServiceStatusResponse
	7,  // [7:11] is the sub-list for method output_type
	3,  // [3:7] is the sub-list for method input_type
	3,  // [3:3] is the sub-list for extension type_name
	3,  // [3:3] is the sub-list for extension extendee
	0,  // [0:3] is the sub-list for field type_name
}

func init() { file_radkit_access_v1_access_proto_init() }
func file_radkit_access_v1_access_proto_init() {
	if File_radkit_access_v1_access_proto != nil {
		return
	}
	type x struct{}
	out := protoimpl.TypeBuilder{
		File: protoimpl.DescBuilder{
			GoPackagePath: reflect.TypeOf(x{}).PkgPath(),
			RawDescriptor: unsafe.Slice(unsafe.StringData(file_radkit_access_v1_access_proto_rawDesc), len(file_radkit_access_v1_access_proto_rawDesc)),
			NumEnums:      2,
			NumMessages:   8,
			NumExtensions: 0,
			NumServices:   1,
		},
		GoTypes:           file_radkit_access_v1_access_proto_goTypes,
		DependencyIndexes: file_radkit_access_v1_access_proto_depIdxs,
		EnumInfos:         file_radkit_access_v1_access_proto_enumTypes,
		MessageInfos:      file_radkit_access_v1_access_proto_msgTypes,
	}.Build()
	File_radkit_access_v1_access_proto = out.File
	file_radkit_access_v1_access_proto_goTypes = nil
	file_radkit_access_v1_access_proto_depIdxs = nil
}
