// Package logwriter takes the write of a log line off the path of the call
// that logs it.
//
// The facade writes a JSON line per call (two per GenerateOTP, with the
// audit record), each one write(2) to stderr on the goroutine that serves
// the call, before the answer is sent. Under load that was a system call
// per line on the critical path, and, with the encoding, the largest
// single item of the facade's own CPU per call. A Writer copies
// each line into a buffer and returns; one goroutine writes what has
// gathered in one system call, FlushDelay after the first line of the
// batch arrived. The delay is what keeps the writer's wake-up off the
// call's path too: a call that logs only arms a timer, where waking the
// writer at once costs the call a futex wake-up, and under load the lines
// of a millisecond share one write.
//
// Lines that must not wait (audit records) go through Synced, whose
// Write returns once the line has been written.
//
// Nothing is dropped. When the output falls behind (a stalled log
// collector) and the lines waiting reach New's maxBuffered, Write blocks
// until it catches up, as the direct write did; a Writer then holds at
// most about twice maxBuffered, counting the batch being written. What a
// Writer still holds is lost only if the process dies without Close
// (SIGKILL, a fatal runtime error, a panic that nothing recovers): the
// lines of the last FlushDelay and of the write in progress.
package logwriter

import (
	"io"
	"sync"
	"time"
)

// DefaultMaxBuffered is how many bytes may wait for a write before Write
// blocks: about a thousand log lines.
const DefaultMaxBuffered = 256 << 10

// FlushDelay is how long a line may wait for others to share its write.
const FlushDelay = time.Millisecond

// Writer is an io.Writer that writes to another in the background, keeping
// each Write's bytes together and in order. It is safe for concurrent use.
type Writer struct {
	out   io.Writer
	max   int
	timer *time.Timer   // fires FlushDelay after a batch's first line
	kick  chan struct{} // write now: a Flush, a full buffer or Close

	mu      sync.Mutex
	changed sync.Cond // pending taken or written, or closed
	pending []byte    // bytes not yet handed to out
	spare   []byte    // the buffer of the last write, reused
	added   uint64    // bytes ever added to pending
	written uint64    // bytes ever handed to out and returned
	closed  bool
	done    chan struct{} // closed when the writing goroutine ends
}

// New returns a Writer to out that holds at most maxBuffered bytes (at
// least one Write's) before Write blocks; zero or less means
// DefaultMaxBuffered. Close it to write what it holds and stop its
// goroutine.
func New(out io.Writer, maxBuffered int) *Writer {
	if maxBuffered <= 0 {
		maxBuffered = DefaultMaxBuffered
	}
	w := &Writer{
		out:   out,
		max:   maxBuffered,
		timer: time.NewTimer(time.Hour),
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	w.timer.Stop()
	w.changed.L = &w.mu
	go w.run()
	return w
}

// Write copies p to be written to the output and returns len(p). It blocks
// only while maxBuffered bytes or more wait for a write. After Close it
// writes p to the output itself, once the Writer's goroutine is done. Errors of the output are not reported: a
// log has nowhere to report them (log/slog drops them too).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) >= w.max && !w.closed {
		w.wake()
		w.changed.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		// Late lines still reach the output, after what the Writer held
		// and never beside its last write.
		<-w.done
		_, _ = w.out.Write(p)
		return len(p), nil
	}
	first := len(w.pending) == 0
	w.pending = append(w.pending, p...)
	w.added += uint64(len(p))
	w.mu.Unlock()
	if first {
		w.timer.Reset(FlushDelay)
	}
	return len(p), nil
}

// Flush returns once every byte written before it has been written to
// the output.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	target := w.added
	for w.written < target {
		w.wake()
		w.changed.Wait()
	}
}

// Synced returns an io.Writer into w whose Write returns only once its
// line, and every line before it, has been written to the output: for
// the records that must be on their way to disk before the call that
// logs them answers (audit records), while other lines stay batched.
// Lines written through either keep the order of their writes.
func (w *Writer) Synced() io.Writer { return synced{w} }

type synced struct{ w *Writer }

func (s synced) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.w.Flush()
	return n, err
}

// Close writes what the Writer holds, stops its goroutine and returns;
// later Writes go to the output directly. It is safe to call more than
// once.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.wake()
	w.mu.Unlock()
	<-w.done
	return nil
}

// wake asks the writing goroutine to write what is held now.
func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default: // already asked
	}
}

// run hands what gathers in pending to the output, one write at a time,
// until the Writer is closed and empty.
func (w *Writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.timer.C:
		case <-w.kick:
		}
		w.mu.Lock()
		for len(w.pending) > 0 {
			// The spare is handed over, never shared: pending must not
			// alias a batch being written.
			batch := w.pending
			w.pending, w.spare = w.spare[:0], nil
			w.mu.Unlock()
			w.changed.Broadcast() // room for blocked writers

			_, _ = w.out.Write(batch)

			w.mu.Lock()
			w.written += uint64(len(batch))
			if cap(batch) <= 2*w.max {
				w.spare = batch
			}
			w.changed.Broadcast() // flushers
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return
		}
	}
}
