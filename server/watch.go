package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/reason"
	"github.com/radkit/radkit-access-facade/internal/watch"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// shutdownRetryDelay is the RetryInfo of a watch ended by shutdown: soon,
// and to another replica.
const shutdownRetryDelay = time.Second

// errUntil ends a watch whose until condition holds.
var errUntil = errors.New("server: watch condition holds")

// errWatchCut ends a watch whose send StopWatches abandoned.
var errWatchCut = errors.New("server: watch cut at shutdown")

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
	ident, _, err := s.resolve(ctx, req.GetIdentity())
	if err != nil {
		return err
	}
	err = s.watches.Watch(ctx, s.callerKey(ctx), watchKey(ident, req.GetServiceId()), func(u watch.Update) error {
		if err := s.sendWatch(stream, watchResponse(u)); err != nil {
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
	case errors.Is(err, watch.ErrClosed), errors.Is(err, errWatchCut):
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

// sendWatch sends m on stream, or gives up when StopWatches cuts the
// watches. A client that does not read leaves Send blocked on HTTP/2 flow
// control, and grpc-go cancels a blocked Send only once the handler
// returns: Send therefore runs in a goroutine of its own, which the
// handler may leave behind, and which ends when grpc-go ends the stream.
// Sends of one stream never overlap: the next waits for this one.
func (s *Server) sendWatch(stream grpc.ServerStreamingServer[accessv1.WatchServiceStatusResponse], m *accessv1.WatchServiceStatusResponse) error {
	sent := make(chan error, 1)
	go func() { sent <- stream.Send(m) }()
	select {
	case err := <-sent:
		return err
	case <-s.watchesCut:
		return errWatchCut
	}
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
// clients reconnect to another replica, and waits for the streams to end
// and the pollers to stop. A stream whose client reads ends at once. One
// whose client does not read has its send blocked on flow control (or,
// over HTTP, on a full socket): when ctx ends first, StopWatches cuts
// those, abandoning their sends (see WatchesCut), and returns an error.
// Call it when shutdown starts, with the share of the shutdown budget the
// watches may take: streams would otherwise hold the drain until its
// timeout.
func (s *Server) StopWatches(ctx context.Context) error {
	closeErr := s.watches.Close(ctx)
	select {
	case <-s.watches.Drained():
		return closeErr
	case <-ctx.Done():
	}
	// Counted before the cut: a stream cut ends at once, and would not be
	// counted after it.
	open := s.watches.Stats().Watches
	s.cutOnce.Do(func() { close(s.watchesCut) })
	return fmt.Errorf("server: %d watch streams whose clients did not read were cut: %w", open, ctx.Err())
}

// WatchesCut is closed when StopWatches has run out of time and cut the
// watch streams still open: a transport should then abandon their
// writes still waiting for a client.
func (s *Server) WatchesCut() <-chan struct{} { return s.watchesCut }

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
