package testkit

import (
	"fmt"
	"os/exec"
	"testing"
)

// Process is a command that a test started with StartProcess: its output is
// captured, and it is killed, if it still runs, when the test ends.
type Process struct {
	Cmd            *exec.Cmd
	Stdout, Stderr *Buffer

	exited chan struct{} // closed once Wait has returned
	err    error         // what Wait returned, set before exited is closed
}

// StartProcess starts cmd with its standard output and error captured in
// the Process's buffers (cmd.Stdout and cmd.Stderr must be unset). When the
// test ends, a process still running is killed and waited for, so that no
// child outlives its test.
func StartProcess(tb testing.TB, cmd *exec.Cmd) (*Process, error) {
	tb.Helper()
	p := &Process{Cmd: cmd, Stdout: &Buffer{}, Stderr: &Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p, nil
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is what waiting for the process returned (nil for exit status 0);
// read it only once Exited is closed.
func (p *Process) Err() error { return p.err }
