package testkit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisPackage is the Debian package that provides redis-server, named in
// the skip message of tests that need one.
const RedisPackage = "redis-server"

// redisStartTimeout bounds how long StartRedis waits for a redis-server to
// answer PING: it only turns a hang into a failure.
const redisStartTimeout = 10 * time.Second

// Redis is a redis-server run by a test on a unix socket of its own, with
// no persistence unless its arguments ask for it ("--appendonly", "yes").
// It is killed when the test ends; Stop and Start kill and restart it on
// the same socket and data directory, for outage tests, and Pause and
// Resume stall it.
type Redis struct {
	tb     testing.TB
	bin    string
	dir    string
	socket string
	args   []string

	mu  sync.Mutex
	cmd *exec.Cmd // nil while stopped
}

// StartRedis starts a redis-server (with extra arguments args, such as
// "--requirepass", "secret") listening only on a unix socket in a fresh
// temporary directory, waits until it answers PING, and kills it when tb
// ends. Without a redis-server on PATH it skips tb through Skip, naming the
// Debian package to install (in CI that is a failure).
func StartRedis(tb testing.TB, args ...string) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Skip(tb, "redis-server not found on PATH: install the Debian package "+RedisPackage)
	}
	// Unix socket paths are limited to about 100 bytes, and tb.TempDir()
	// can be longer: a short directory of its own instead.
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		tb.Fatalf("redis temp dir: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	r := &Redis{tb: tb, bin: bin, dir: dir, socket: filepath.Join(dir, "redis.sock"), args: args}
	tb.Cleanup(r.Stop)
	r.Start()
	return r
}

// StartRedisACL is StartRedis with ACL users: acl is the content of an ACL
// file (lines "user NAME on #SHA256 ~pattern +command ..."), written
// beside the server and passed to it with --aclfile. See DeployedRedisACL.
func StartRedisACL(tb testing.TB, acl string, args ...string) *Redis {
	tb.Helper()
	dir := tb.TempDir()
	file := filepath.Join(dir, "users.acl")
	if err := os.WriteFile(file, []byte(acl), 0o600); err != nil {
		tb.Fatalf("redis ACL file: %v", err)
	}
	return StartRedis(tb, append([]string{"--aclfile", file}, args...)...)
}

// DeployedRedisACLUser is the ACL user of DeployedRedisACL.
const DeployedRedisACLUser = "radkit-facade"

// DeployedRedisACL returns the ACL file the Kubernetes manifests give
// Redis (deploy/kubernetes/redis/users.acl), with password as the facade
// user's: tests that run the facade against it prove that the shipped
// ACL lets the facade do all it needs, under the default prefix.
func DeployedRedisACL(tb testing.TB, password string) string {
	tb.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("DeployedRedisACL: no caller information")
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(self), "..", "..", "deploy", "kubernetes", "redis", "users.acl"))
	if err != nil {
		tb.Fatalf("DeployedRedisACL: %v", err)
	}
	sum := sha256.Sum256([]byte(password))
	return strings.ReplaceAll(string(b), "REDIS_PASSWORD_SHA256", hex.EncodeToString(sum[:]))
}

// URL is the redis-server's address as a unix:// URL.
func (r *Redis) URL() string { return "unix://" + r.socket }

// Dir is the redis-server's data directory, kept over Stop and Start.
func (r *Redis) Dir() string { return r.dir }

// Socket is the path of the redis-server's unix socket.
func (r *Redis) Socket() string { return r.socket }

// Start starts the redis-server again after Stop, on the same socket, and
// waits until it answers; it does nothing while the server runs.
func (r *Redis) Start() {
	r.tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	args := append([]string{
		"--port", "0", "--unixsocket", r.socket, "--unixsocketperm", "700",
		"--dir", r.dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
		"--loglevel", "warning", "--logfile", filepath.Join(r.dir, "redis.log"),
	}, r.args...)
	cmd := exec.Command(r.bin, args...)
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(redisStartTimeout)
	for {
		err := r.ping()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.tb.Fatalf("redis-server did not answer PING within %s: %v\n%s", redisStartTimeout, err, log)
		}
		time.Sleep(PollInterval)
	}
}

// ping sends an inline PING and expects PONG or NOAUTH (a server with
// --requirepass is up all the same).
func (r *Redis) ping() error {
	c, err := net.DialTimeout("unix", r.socket, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("+PONG")) && !bytes.Contains(line, []byte("NOAUTH")) {
		return fmt.Errorf("unexpected answer %q", line)
	}
	return nil
}

// Stop kills the redis-server (SIGKILL: an outage, not a shutdown) and
// waits for it to exit; it does nothing while the server is stopped.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill() // a paused process dies of SIGKILL too
	_ = r.cmd.Wait()
	r.cmd = nil
	_ = os.Remove(r.socket)
}
