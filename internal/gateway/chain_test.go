package gateway

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/grpc"
)

// TestChainOrder: the first interceptor is outermost, each runs once, the
// handler runs last and sees what the interceptors put in the context, and
// the info reaches every interceptor.
func TestChainOrder(t *testing.T) {
	type key struct{}
	for n := range 4 {
		t.Run(fmt.Sprint(n, " interceptors"), func(t *testing.T) {
			var got []string
			var ics []grpc.UnaryServerInterceptor
			for i := range n {
				ics = append(ics, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
					got = append(got, fmt.Sprintf("in%d:%s", i, info.FullMethod))
					resp, err := handler(context.WithValue(ctx, key{}, i), req)
					got = append(got, fmt.Sprintf("out%d", i))
					return resp, err
				})
			}
			resp, err := Chain(ics...)(context.Background(), "req", &grpc.UnaryServerInfo{FullMethod: "/m"},
				func(ctx context.Context, req any) (any, error) {
					got = append(got, fmt.Sprintf("handler:%v:%v", req, ctx.Value(key{})))
					return "resp", nil
				})
			if resp != "resp" || err != nil {
				t.Fatalf("chain returned %v, %v; want the handler's answer", resp, err)
			}
			var want []string
			for i := range n {
				want = append(want, fmt.Sprintf("in%d:/m", i))
			}
			last := any(nil)
			if n > 0 {
				last = n - 1
			}
			want = append(want, fmt.Sprintf("handler:req:%v", last))
			for i := n - 1; i >= 0; i-- {
				want = append(want, fmt.Sprintf("out%d", i))
			}
			if !slices.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
		})
	}
}
