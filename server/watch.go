package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/internal/reason"
	"github.com/radkit/radkit-access-facade/server/internal/watch"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// shutdownRetryDelay is the RetryInfo of a watch ended by shutdown: soon,
// and to another replica.
const shutdownRetryDelay = time.Second

// errUntil ends a watch whose until condition holds.
var errUntil = errors.New("server: watch condition holds")

// WatchServiceStatus implements accessv1.AccessServiceServer: it streams
// the service's status from the shared watch hub (package watch).
func (s *Server) WatchServiceStatus(req *accessv1.WatchServiceStatusRequest, stream grpc.ServerStreamingServer[accessv1.WatchServiceStatusResponse]) error {
	if err := validateWatchServiceStatus(req); err != nil {
		return err
	}
	ctx := stream.Context()
	until := req.GetUntil()
	// A watch polls as the identity it resolves to (the caller's default
	// when empty), and shares a poller only with watches of the same
	// service as the same identity. Resolved before the hub is asked, so
	// that a refused identity starts no poller and sends nothing upstream.
	ident, _, err := s.identities.Resolve(ctx, req.GetIdentity())
	if err != nil {
		return err
	}
	err = s.watches.Watch(ctx, s.callerKey(ctx), watchKey(ident, req.GetServiceId()), func(u watch.Update) error {
		if err := stream.Send(watchResponse(u)); err != nil {
			return err
		}
		if holds(until, u.Status) {
			return errUntil
		}
		return nil
	})
	switch {
	case errors.Is(err, errUntil):
		return nil
	case errors.Is(err, watch.ErrTooManyWatches):
		return reason.Error(reason.TooManyWatches, "")
	case errors.Is(err, watch.ErrClosed):
		return reason.Error(reason.ShuttingDown, "", reason.WithRetryAfter(shutdownRetryDelay))
	case err != nil && err == ctx.Err():
		// The caller's deadline, or the caller left.
		return status.FromContextError(err).Err()
	case err != nil:
		if _, ok := status.FromError(err); ok {
			return err // a failed Send
		}
		recordUpstream(ctx, err)
		return Status(err)
	}
	return nil
}

// callerKey is whom a watch counts against: Config.CallerKey, or the
// authenticated caller.
func (s *Server) callerKey(ctx context.Context) string {
	if s.watchCaller != nil {
		return s.watchCaller(ctx)
	}
	return callerFrom(ctx)
}

// watchKey is the hub's key of a watch of serviceID as identity: neither
// an identity name nor a valid service ID contains "/".
func watchKey(identity, serviceID string) string { return identity + "/" + serviceID }

// watchLookup is the hub's status path: GetServiceStatus's, as the key's
// identity. An identity that a reload removed ends its watches with
// IDENTITY_NOT_GRANTED.
func (s *Server) watchLookup(ctx context.Context, key string) (upstream.ServiceStatus, error) {
	ident, serviceID, _ := strings.Cut(key, "/")
	up, ok := s.identities.Upstream(ident)
	if !ok {
		return upstream.ServiceStatus{}, reason.Error(reason.IdentityNotGranted, "")
	}
	return up.ServiceStatus(ctx, serviceID)
}

// StopWatches ends every open WatchServiceStatus stream with UNAVAILABLE
// (reason SHUTTING_DOWN, with RetryInfo) and refuses new ones, so that
// clients reconnect to another replica; it waits for the pollers to stop
// or ctx to end. Call it when shutdown starts, before the servers drain:
// streams would otherwise hold the drain until its timeout.
func (s *Server) StopWatches(ctx context.Context) error {
	return s.watches.Close(ctx)
}

// WatchStats returns the watch hub's counters, for metrics.
func (s *Server) WatchStats() watch.Stats { return s.watches.Stats() }

// holds reports whether st meets until.
func holds(until accessv1.WatchServiceStatusRequest_Until, st upstream.ServiceStatus) bool {
	switch until {
	case accessv1.WatchServiceStatusRequest_UNTIL_ONLINE:
		return st.Online
	case accessv1.WatchServiceStatusRequest_UNTIL_OFFLINE:
		return !st.Online
	case accessv1.WatchServiceStatusRequest_UNTIL_ACTIVE:
		return st.Active
	case accessv1.WatchServiceStatusRequest_UNTIL_INACTIVE:
		return !st.Active
	}
	return false
}

func watchResponse(u watch.Update) *accessv1.WatchServiceStatusResponse {
	kind := accessv1.WatchServiceStatusResponse_KIND_UNSPECIFIED
	switch u.Kind {
	case watch.Initial:
		kind = accessv1.WatchServiceStatusResponse_KIND_INITIAL
	case watch.Change:
		kind = accessv1.WatchServiceStatusResponse_KIND_CHANGE
	case watch.Heartbeat:
		kind = accessv1.WatchServiceStatusResponse_KIND_HEARTBEAT
	}
	return &accessv1.WatchServiceStatusResponse{
		ServiceId:    u.Status.ServiceID,
		Active:       u.Status.Active,
		Online:       u.Status.Online,
		ObservedTime: timestamppb.New(u.Observed),
		Kind:         kind,
	}
}
