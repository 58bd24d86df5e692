// Package growstack grows a goroutine's stack early, while it is shallow.
//
// A goroutine starts with a small stack that the runtime doubles, by
// copying it, whenever a call needs more. The copy walks every frame on
// the stack to move its pointers, so it costs more the deeper the stack
// is. A facade call goes deep: the gRPC server, the interceptor chain, the
// resilience layers, the upstream client and net/http's transport. Left
// alone, its goroutine grew its stack down there, under some thirty
// frames, once or twice per call: runtime.copystack was 13 % of the
// facade's CPU under load (docs/performance.md). Growing it once
// before the descent, where a dozen frames are copied, costs a fraction of
// that.
//
// The idea is CockroachDB's pkg/util/growstack.
package growstack

// Size is how much free stack Grow makes room for. A GenerateOTP or
// GetServiceStatus call, from the interceptor chain down to net/http's
// transport, fits in it: with it, the profile under load shows no stack
// growth below Grow. It is kept small enough that the grown stack (16 KiB
// from a shallow start) comes from the runtime's per-P stack cache, which
// serves stacks below 32 KiB without a lock; a 16 KiB Size made 32 KiB
// stacks, allocated from the heap, and cost more than it saved.
const Size = 8 << 10

// Grow makes sure that the calling goroutine has about Size bytes of free
// stack, growing its stack now if it has not. Call it first thing in a
// goroutine, or a handler, that is about to go deep. When there is room
// already it costs the zeroing of its frame, about 100 ns.
//
//go:noinline
func Grow() {
	var frame [Size]byte
	use(&frame)
}

// use keeps Grow's frame from being optimised away.
//
//go:noinline
func use(*[Size]byte) {}
