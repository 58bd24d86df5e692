package logwriter

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// gatedOutput is an output whose writes wait for the gate to open, to
// stand for a log collector that has stalled.
type gatedOutput struct {
	gate    chan struct{} // closed to let writes through (open)
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	entered chan struct{} // receives once per write that starts
}

func newGatedOutput(open bool) *gatedOutput {
	o := &gatedOutput{gate: make(chan struct{}), entered: make(chan struct{}, 1024)}
	if open {
		o.open()
	}
	return o
}

// open lets writes through, now and from then on.
func (o *gatedOutput) open() { o.once.Do(func() { close(o.gate) }) }

func (o *gatedOutput) Write(p []byte) (int, error) {
	o.entered <- struct{}{}
	<-o.gate
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes++
	return o.buf.Write(p)
}

func (o *gatedOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// stillWaiting fails with failure if ch receives within 50 ms: a check
// that something stays blocked (on a loaded machine it may pass when it
// should not, never the other way).
func stillWaiting(t *testing.T, ch <-chan struct{}, failure string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal(failure)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestLinesStayWholeAndInOrder(t *testing.T) {
	const writers, lines = 8, 500
	out := newGatedOutput(true)
	w := New(out, 1<<10) // small, so that writers also block and resume
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			line := make([]byte, 0, 64)
			for i := range lines {
				line = fmt.Appendf(line[:0], "writer %d line %04d\n", g, i)
				if n, err := w.Write(line); n != len(line) || err != nil {
					t.Errorf("Write = %d, %v; want %d, nil", n, err, len(line))
				}
				// slog reuses its buffer: the Writer must have copied it.
				copy(line, "XXXXXXXXXXXXXXXX")
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("got %d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var g, i int
		if _, err := fmt.Sscanf(l, "writer %d line %d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("line %q is not one of the lines written: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: got line %d, want %d: lines out of order or lost", g, i, next[g])
		}
		next[g]++
	}
	if out.writes >= writers*lines {
		t.Logf("no two lines shared a write (%d writes): the machine never let lines gather", out.writes)
	}
}

func TestFlushWaitsForTheOutput(t *testing.T) {
	out := newGatedOutput(false)
	w := New(out, 0)
	defer func() { out.open(); w.Close() }() // a failed test must not leave the write stalled
	_, _ = w.Write([]byte("one\n"))
	testkit.Receive(t, out.entered, 10*time.Second, "the background write of the first line")
	flushed := make(chan struct{})
	go func() {
		w.Flush()
		close(flushed)
	}()
	stillWaiting(t, flushed, "Flush returned while the output had not taken the line")
	out.open()
	testkit.Receive(t, flushed, 10*time.Second, "Flush after the output took the line")
	if got := out.String(); got != "one\n" {
		t.Fatalf("output %q, want %q", got, "one\n")
	}
}

func TestWriteBlocksWhenFullAndLosesNothing(t *testing.T) {
	out := newGatedOutput(false)
	w := New(out, 10)
	defer func() { out.open(); w.Close() }() // a failed test must not leave the write stalled
	_, _ = w.Write([]byte("aaaa\n"))         // taken by the background write, which stalls
	testkit.Receive(t, out.entered, 10*time.Second, "the background write of the first line")
	_, _ = w.Write([]byte("bbbb\n")) // held: 5 bytes
	_, _ = w.Write([]byte("cccc\n")) // held: 10 bytes, the bound
	third := make(chan struct{})
	go func() {
		_, _ = w.Write([]byte("dddd\n"))
		close(third)
	}()
	stillWaiting(t, third, "Write returned while the Writer held its bound and the output was stalled")
	out.open()
	testkit.Receive(t, third, 10*time.Second, "the blocked Write once the output caught up")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "aaaa\nbbbb\ncccc\ndddd\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestCloseWritesWhatIsHeldAndLaterWritesGoThrough(t *testing.T) {
	out := newGatedOutput(true)
	w := New(out, 0)
	for i := range 100 {
		_, _ = fmt.Fprintf(w, "line %d\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 100 {
		t.Fatalf("after Close the output has %d lines, want 100", n)
	}
	_, _ = w.Write([]byte("late\n"))
	if !strings.HasSuffix(out.String(), "line 99\nlate\n") {
		t.Fatalf("a Write after Close did not reach the output at once: %q", out.String()[max(0, out.buf.Len()-20):])
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestALineIsWrittenWithoutFlush(t *testing.T) {
	out := newGatedOutput(true)
	w := New(out, 0)
	defer w.Close()
	_, _ = w.Write([]byte("alone\n"))
	// FlushDelay after it arrived; bounded generously for a loaded machine.
	testkit.Eventually(t, 10*time.Second, "the line to reach the output with no Flush", func() bool {
		return out.String() == "alone\n"
	})
}

// stallNth is an output whose nth write waits for release before it
// takes the bytes.
type stallNth struct {
	n       int
	stalled chan struct{}
	release chan struct{}
	mu      sync.Mutex
	calls   int
	buf     bytes.Buffer
}

func (o *stallNth) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.calls++
	call := o.calls
	o.mu.Unlock()
	if call == o.n {
		close(o.stalled)
		<-o.release
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func TestALongLineDoesNotMakeBuffersShared(t *testing.T) {
	// A batch too large to keep as the spare buffer must not leave the
	// spare aliasing the next batch, or lines written meanwhile would
	// overwrite the one being written.
	out := &stallNth{n: 4, stalled: make(chan struct{}), release: make(chan struct{})}
	w := New(out, 10)
	defer func() {
		select {
		case <-out.release:
		default:
			close(out.release)
		}
		w.Close()
	}()
	long := strings.Repeat("L", 99) + "\n" // over twice the bound: not kept as the spare
	for _, line := range []string{"x\n", long, "ab\n"} {
		_, _ = w.Write([]byte(line))
		w.Flush()
	}
	_, _ = w.Write([]byte("cd\n")) // the 4th write, which stalls
	testkit.Receive(t, out.stalled, 10*time.Second, "the write of cd")
	_, _ = w.Write([]byte("zz\n"))
	close(out.release)
	w.Flush()
	out.mu.Lock()
	got := out.buf.String()
	out.mu.Unlock()
	if want := "x\n" + long + "ab\ncd\nzz\n"; got != want {
		t.Fatalf("output ends %q, want it to end %q", got[max(0, len(got)-9):], want[len(want)-9:])
	}
}

func TestLinesDuringCloseComeAfterTheHeldOnes(t *testing.T) {
	out := newGatedOutput(false)
	w := New(out, 0)
	_, _ = w.Write([]byte("A\n"))
	testkit.Receive(t, out.entered, 10*time.Second, "the background write of A")
	closed := make(chan struct{})
	go func() { _ = w.Close(); close(closed) }()
	testkit.Eventually(t, 10*time.Second, "Close to begin", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.closed
	})
	late := make(chan struct{})
	go func() { _, _ = w.Write([]byte("B\n")); close(late) }()
	stillWaiting(t, out.entered, "a Write during Close went to the output while the held line was still being written")
	stillWaiting(t, late, "a Write during Close returned while the held line was still being written")
	out.open()
	testkit.Receive(t, closed, 10*time.Second, "Close")
	testkit.Receive(t, late, 10*time.Second, "the late Write")
	if got := out.String(); got != "A\nB\n" {
		t.Fatalf("output %q, want %q", got, "A\nB\n")
	}
}

// TestSyncedWriteReturnsOnceWritten checks that a Write through Synced
// returns only once its line, and the batched lines before it, are in the
// output, in order.
func TestSyncedWriteReturnsOnceWritten(t *testing.T) {
	out := newGatedOutput(false)
	w := New(out, 0)
	defer w.Close()
	_, _ = w.Write([]byte("batched\n"))
	returned := make(chan struct{})
	go func() {
		_, _ = w.Synced().Write([]byte("synced\n"))
		close(returned)
	}()
	stillWaiting(t, returned, "a Synced Write returned before the output took its line")
	out.open()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("a Synced Write did not return once the output took its line")
	}
	if got := out.String(); got != "batched\nsynced\n" {
		t.Errorf("output %q, want the batched line then the synced one", got)
	}
}
