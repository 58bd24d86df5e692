package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The service the bench measures, and the bench's own module, which holds
// the floor. The bench is a module of its own so that it and the floor
// resolve the service's dependency versions (see docs/development.md).
const (
	serviceModule = "github.com/radkit/radkit-access-facade"
	benchModule   = serviceModule + "/tools/bench"
)

// buildBinaries builds the facade and the emulator into dir the way the
// Dockerfile builds the facade (CGO_ENABLED=0, -trimpath, -s -w), in the
// service's module with its go.mod, so that what is measured is what ships.
func buildBinaries(ctx context.Context, dir string) (facade, emu string, err error) {
	root, err := moduleDir(ctx, serviceModule)
	if err != nil {
		return "", "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version=bench",
		"-o", dir+string(filepath.Separator),
		serviceModule+"/cmd/radkit-access-facade",
		serviceModule+"/cmd/radkit-access-emulator")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return filepath.Join(dir, "radkit-access-facade"), filepath.Join(dir, "radkit-access-emulator"), nil
}

// moduleDir is the directory of module path as the go command resolves it
// from the working directory, which must be inside the bench's module:
// there the service's module is its replacement (../..).
func moduleDir(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Path}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: %w", err)
	}
	if main := strings.TrimSpace(string(out)); main != benchModule {
		return "", fmt.Errorf("the working directory is in module %q, not %s: run the bench as go -C tools/bench run .", main, benchModule)
	}
	out, err = exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", path, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("go list -m %s: no directory (module not downloaded?)", path)
	}
	return dir, nil
}

// proc is a child process whose output is drained, keeping a tail for
// error messages. Children get SIGKILL if the bench dies (Pdeathsig).
type proc struct {
	name string
	cmd  *exec.Cmd
	tail *tailBuffer
	done chan struct{}
	err  error // valid once done is closed
}

// startProc starts bin with args and env. If stdout is non-nil it receives
// the child's stdout (it must drain it); otherwise stdout goes to the tail.
func startProc(name, bin string, args, env []string, stdout func(io.Reader)) (*proc, error) {
	p := &proc{name: name, tail: newTailBuffer(8 << 10), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stderr = p.tail
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var pipe io.ReadCloser
	if stdout != nil {
		var err error
		if pipe, err = p.cmd.StdoutPipe(); err != nil {
			return nil, fmt.Errorf("%s: stdout pipe: %w", name, err)
		}
	} else {
		p.cmd.Stdout = p.tail
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	var readers sync.WaitGroup
	if pipe != nil {
		readers.Add(1)
		go func() {
			defer readers.Done()
			stdout(pipe)
			_, _ = io.Copy(io.Discard, pipe)
		}()
	}
	go func() {
		readers.Wait() // Wait closes the pipe: read it to EOF first
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the child's process ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// diag describes how the child ended (or that it runs) with its last output.
func (p *proc) diag() string {
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	return fmt.Sprintf("%s (%s); last output:\n%s", p.name, state, p.tail.String())
}

// tailBuffer is an io.Writer keeping the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// emulatorProc is a running emulator and what its banner told.
type emulatorProc struct {
	*proc
	baseURL      string
	clientID     string
	clientSecret string
}

// startEmulator starts the emulator on a free loopback port and reads its
// banner for the address and the first seeded client.
func startEmulator(ctx context.Context, bin string, extra ...string) (*emulatorProc, error) {
	type banner struct {
		addr, base, id, secret string
		err                    error
	}
	got := make(chan banner, 1)
	read := func(r io.Reader) {
		var b banner
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "radkit-access-emulator listening on "):
				b.addr = strings.TrimPrefix(line, "radkit-access-emulator listening on ")
			case strings.HasPrefix(line, "base URL: "):
				b.base = strings.TrimPrefix(line, "base URL: ") // https:// with --tls
			case strings.HasPrefix(line, "client: ") && b.id == "":
				b.id, b.secret = bannerField(line, "id"), bannerField(line, "secret")
			case strings.HasPrefix(line, "ready"):
				got <- b
				return
			}
		}
		b.err = errors.New("emulator banner ended early")
		got <- b
	}
	args := append([]string{"--addr", "127.0.0.1:0"}, extra...)
	p, err := startProc("emulator", bin, args, childEnv(), read)
	if err != nil {
		return nil, err
	}
	select {
	case b := <-got:
		if b.err == nil && (b.addr == "" || b.id == "") {
			b.err = errors.New("emulator banner lacks the address or a client")
		}
		if b.err != nil {
			p.stop(time.Second)
			return nil, fmt.Errorf("%w: %s", b.err, p.diag())
		}
		base := "http://" + b.addr
		if strings.HasPrefix(b.base, "https://") {
			base = b.base
		}
		return &emulatorProc{proc: p, baseURL: base, clientID: b.id, clientSecret: b.secret}, nil
	case <-time.After(15 * time.Second):
		p.stop(time.Second)
		return nil, fmt.Errorf("emulator did not print its banner in 15s: %s", p.diag())
	case <-ctx.Done():
		p.stop(time.Second)
		return nil, ctx.Err()
	}
}

// bannerField returns the value of key=value in a banner line.
func bannerField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// facadeProc is a running facade.
type facadeProc struct {
	*proc
	grpcAddr string
	httpAddr string
	args     []string
}

// startFacade starts the facade pointed at emu with the emulator's client
// credentials (the secret through a file, as in production) and waits until
// its gRPC health check answers SERVING.
func startFacade(ctx context.Context, bin, tmp string, emu *emulatorProc, extra, extraEnv []string) (*facadeProc, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	secretFile, err := os.CreateTemp(tmp, "client-secret-*")
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if _, err := secretFile.WriteString(emu.clientSecret + "\n"); err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if err := secretFile.Close(); err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	f := &facadeProc{grpcAddr: ports[0], httpAddr: ports[1]}
	f.args = append([]string{
		"--upstream-url", emu.baseURL,
		"--grpc-addr", f.grpcAddr,
		"--http-addr", f.httpAddr,
		"--log-format", "json",
		// The load generator is one caller driving far more than the
		// default per-caller rate; what is measured is the facade's cost.
		"--rate-limit", "0",
	}, extra...)
	env := append(childEnv(),
		"RADKIT_ACCESS_CLIENT_ID="+emu.clientID,
		"RADKIT_ACCESS_CLIENT_SECRET_FILE="+secretFile.Name())
	env = append(env, extraEnv...)
	if f.proc, err = startProc("facade", bin, f.args, env, nil); err != nil {
		return nil, err
	}
	if err := waitServing(ctx, f); err != nil {
		f.stop(5 * time.Second)
		return nil, err
	}
	return f, nil
}

// waitServing polls grpc.health.v1 Check("") until SERVING.
func waitServing(ctx context.Context, f *facadeProc) error {
	conn, err := grpc.NewClient(f.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("health client: %w", err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if f.exited() {
			return fmt.Errorf("facade exited before becoming ready: %s", f.diag())
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		last = fmt.Sprint(resp.GetStatus(), err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("facade not SERVING after 30s (last: %s): %s", last, f.diag())
}

// freePorts returns n distinct free loopback addresses. They are closed
// before use, so another process could take one first; on a bench machine
// that is unlikely.
func freePorts(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// childEnv is the bench's environment without any RADKIT_ variable, so that
// the user's settings cannot change what is measured.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RADKIT_") {
			env = append(env, kv)
		}
	}
	return env
}

// facadeSupports reports whether the facade's --help lists flag.
func facadeSupports(ctx context.Context, bin, flag string) bool {
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	return strings.Contains(string(out), "-"+flag+" ") || strings.Contains(string(out), "-"+flag+"\n") ||
		strings.Contains(string(out), "-"+flag+"\t")
}

// procStat is a sample of a process's CPU time and memory.
type procStat struct {
	cpu   time.Duration // utime + stime
	rss   int64         // VmRSS, bytes
	hwm   int64         // VmHWM, bytes
	valid bool
}

// readProcStat reads /proc/<pid>/stat and /proc/<pid>/status.
func readProcStat(pid int, clkTck int64) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read stat: %w", err)
	}
	ticks, err := parseStatTicks(string(b))
	if err != nil {
		return procStat{}, err
	}
	st := procStat{cpu: time.Duration(ticks) * time.Second / time.Duration(clkTck), valid: true}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read status: %w", err)
	}
	st.rss, st.hwm = parseStatusKB(string(status), "VmRSS:")*1024, parseStatusKB(string(status), "VmHWM:")*1024
	return st, nil
}

// parseStatTicks returns utime+stime (fields 14 and 15) from a
// /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatTicks(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse /proc stat: no ')'")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("parse /proc stat: too few fields")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return utime + stime, nil
}

// parseStatusKB returns the kB value of a /proc/<pid>/status line.
func parseStatusKB(status, key string) int64 {
	for line := range strings.Lines(status) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// clockTicks is getconf CLK_TCK, or 100 (Linux's USER_HZ) if getconf fails.
func clockTicks(ctx context.Context) int64 {
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit; children
// inherit it. It returns the soft limit in force.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		raised := syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return lim.Cur, fmt.Errorf("setrlimit: %w", err)
		}
		return raised.Cur, nil
	}
	return lim.Cur, nil
}
