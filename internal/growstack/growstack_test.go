package growstack

import (
	"runtime/debug"
	"testing"
	"unsafe"
)

// deep uses about n bytes of stack, in frames of 256 bytes, and returns
// the address of a local of its deepest frame (to defeat inlining and
// tail calls).
//
//go:noinline
func deep(n int) uintptr {
	var frame [256]byte
	frame[0] = byte(n)
	if n <= len(frame) {
		return uintptr(unsafe.Pointer(&frame[0]))
	}
	return deep(n-len(frame)) + uintptr(frame[0]&0)
}

// moves reports whether the stack of a fresh goroutine moves (is copied to
// a larger one) while it calls deep(need), after calling Grow first when
// grow is set.
func moves(grow bool, need int) bool {
	result := make(chan bool)
	go func() {
		if grow {
			Grow()
		}
		var marker byte
		before := uintptr(unsafe.Pointer(&marker))
		deep(need)
		result <- uintptr(unsafe.Pointer(&marker)) != before
	}()
	return <-result
}

func TestGrow(t *testing.T) {
	// A GC between Grow and the deep call could shrink the grown stack,
	// which is mostly unused then, and move it.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	// Without Grow, a fresh goroutine (2 to 8 KiB of stack, depending on
	// the runtime's average) must grow to go 7 KiB deeper: the control
	// that shows that moves can see a copy at all.
	const need = 7 << 10
	if !moves(false, need+8<<10) {
		t.Fatal("control: a fresh goroutine went 15 KiB deep without its stack moving; the test cannot see stack growth")
	}
	for range 20 {
		if moves(true, need) {
			t.Fatalf("after Grow, a goroutine's stack moved while going %d bytes deep: Grow did not make room for Size (%d) bytes", need, Size)
		}
	}
}
