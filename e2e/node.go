// Package e2e holds helpers for end-to-end tests of the facade that drive it
// with clients written in other languages, to prove that stubs generated from
// proto/ outside Go work against it.
//
// The Node.js client lives in e2e/node (client.mjs, with its dependencies
// pinned in package-lock.json). Tests get it with NodeClient and call the
// server with Node.Call; other scripts there (openapi.mjs: the OpenAPI
// documents' validation and a generated TypeScript client) run with
// Node.Script.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/radkit/radkit-access-facade/internal/testkit"
)

const (
	// npmCITimeout bounds "npm ci" in e2e/node.
	npmCITimeout = 3 * time.Minute
	// npmLockStale is how old a cross-process install lock must be before
	// it is taken to be left over by a killed process and removed.
	npmLockStale = npmCITimeout + time.Minute
	// nodeWaitDelay is how long a finished or cancelled node or npm process
	// may keep its output pipes open before they are closed.
	nodeWaitDelay = 5 * time.Second
)

// nodeSetup caches, per test process, the preparation of e2e/node: finding
// the directory and running "npm ci" there when node_modules does not match
// package-lock.json. It is the package's only global state; once guards the
// fields, which are written only inside once.Do.
var nodeSetup struct {
	once sync.Once
	dir  string // absolute path of e2e/node
	err  error  // why e2e/node could not be prepared, with npm's output
}

// Node runs e2e/node/client.mjs, a Node.js gRPC client that loads the
// radkit.access.v1 protos at run time with @grpc/proto-loader.
type Node struct {
	node   string // path of the node binary
	script string // absolute path of client.mjs
}

// NodeCall is one RPC for Node.Call to make.
type NodeCall struct {
	// RPC is the method name: "GenerateOTP", "GetServiceStatus",
	// "RevokeToken" or "WatchServiceStatus" (a server stream, read to its
	// end).
	RPC string `json:"rpc"`
	// Request is the request message as proto-loader takes it: an object
	// with the proto field names (snake_case), for example
	// map[string]any{"service_id": "abc"}. Nil sends an empty message.
	Request any `json:"request,omitempty"`
	// DeadlineMS, when positive, sets the call's deadline that many
	// milliseconds after the call starts.
	DeadlineMS int `json:"deadline_ms,omitempty"`
	// Metadata is sent as request metadata. Values of keys ending in
	// "-bin" must be base64.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// NodeResult is the outcome of one NodeCall as the Node.js client saw it.
type NodeResult struct {
	// RPC is the method called.
	RPC string `json:"rpc"`
	// OK is whether the call succeeded.
	OK bool `json:"ok"`
	// Response is the response message decoded by proto-loader (snake_case
	// field names, defaults filled in, 64-bit integers and enums as
	// strings); nil when the call failed.
	Response map[string]any `json:"response"`
	// Messages are the messages of a server stream, in order, decoded as
	// Response is; nil for a unary call.
	Messages []map[string]any `json:"messages"`
	// Code is the call's gRPC status code; codes.OK on success.
	Code codes.Code `json:"code"`
	// Details is the status message; empty on success.
	Details string `json:"details"`
	// ErrorReasons lists the reasons of the google.rpc.ErrorInfo details
	// found in the grpc-status-details-bin trailer, in order.
	ErrorReasons []string `json:"error_reasons"`
}

// NodeClient returns the Node.js client, installing its dependencies with
// "npm ci" first (at most once per test process) unless node_modules is
// already up to date with package-lock.json. When node or npm is not on
// PATH, it skips the test, or fails it in CI (testkit.Skip).
func NodeClient(t testing.TB) *Node {
	t.Helper()
	nodePath, err := exec.LookPath("node")
	if err == nil {
		_, err = exec.LookPath("npm")
	}
	if err != nil {
		testkit.Skip(t, fmt.Sprintf("e2e: the Node.js client needs node and npm on PATH (install Node.js 18 or later): %v", err))
	}

	nodeSetup.once.Do(func() {
		nodeSetup.dir, nodeSetup.err = prepareNodeDir()
	})
	if nodeSetup.err != nil {
		t.Fatalf("e2e: preparing the Node.js client: %v", nodeSetup.err)
	}
	return &Node{node: nodePath, script: filepath.Join(nodeSetup.dir, "client.mjs")}
}

// Call runs client.mjs against the gRPC server at addr (host:port, served
// in plaintext), which makes calls in order, and returns one result per
// call. A call that fails with a gRPC status is a result, not an error; the
// error reports a client that could not run, could not connect or printed
// something unexpected. ctx bounds the whole run.
func (n *Node) Call(ctx context.Context, addr string, calls []NodeCall) ([]NodeResult, error) {
	callsJSON, err := json.Marshal(calls)
	if err != nil {
		return nil, fmt.Errorf("e2e: encoding node calls: %w", err)
	}
	cmd := exec.CommandContext(ctx, n.node, n.script, "--addr", addr, "--calls", string(callsJSON))
	cmd.Dir = filepath.Dir(n.script)
	cmd.WaitDelay = nodeWaitDelay
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("e2e: running %s --addr %s: %w\nstderr:\n%s\nstdout:\n%s",
			filepath.Base(n.script), addr, err, stderr.Bytes(), stdout.Bytes())
	}

	results := make([]NodeResult, 0, len(calls))
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r NodeResult
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("e2e: decoding node client output line %q: %w", line, err)
		}
		results = append(results, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("e2e: reading node client output: %w", err)
	}
	if len(results) != len(calls) {
		return nil, fmt.Errorf("e2e: node client printed %d results for %d calls\nstderr:\n%s\nstdout:\n%s",
			len(results), len(calls), stderr.Bytes(), stdout.Bytes())
	}
	return results, nil
}

// Script runs another script of e2e/node (for example openapi.mjs) with
// args, in that directory, and returns what it printed on stdout. ctx
// bounds the run; a non-zero exit is an error that carries both outputs.
func (n *Node) Script(ctx context.Context, script string, args ...string) ([]byte, error) {
	dir := filepath.Dir(n.script)
	cmd := exec.CommandContext(ctx, n.node, append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = dir
	cmd.WaitDelay = nodeWaitDelay
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("e2e: running %s: %w\nstderr:\n%s\nstdout:\n%s", script, err, stderr.Bytes(), stdout.Bytes())
	}
	return stdout.Bytes(), nil
}

// prepareNodeDir finds e2e/node and makes sure its node_modules matches
// package-lock.json, running "npm ci" if not. It returns the directory.
func prepareNodeDir() (string, error) {
	dir, err := findNodeDir()
	if err != nil {
		return "", err
	}
	if ok, _ := nodeModulesUpToDate(dir); ok {
		return dir, nil
	}

	// "go test ./..." runs several test binaries at once, and each may get
	// here; a directory lock keeps their "npm ci" runs apart.
	unlock, err := lockNodeDir(dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	if ok, _ := nodeModulesUpToDate(dir); ok {
		return dir, nil // another process installed while this one waited
	}

	ctx, cancel := context.WithTimeout(context.Background(), npmCITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.WaitDelay = nodeWaitDelay
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return "", fmt.Errorf("npm ci in %s after %s: %w\noutput:\n%s",
			dir, time.Since(start).Round(time.Millisecond), err, out)
	}
	if ok, why := nodeModulesUpToDate(dir); !ok {
		return "", fmt.Errorf("npm ci in %s succeeded but node_modules still does not match package-lock.json: %s\noutput:\n%s",
			dir, why, out)
	}
	return dir, nil
}

// findNodeDir returns the absolute path of e2e/node: next to this source
// file when it is available (it is not under -trimpath), else under the
// module root found by walking up from the working directory to go.mod.
func findNodeDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), "node")
		if _, err := os.Stat(filepath.Join(dir, "client.mjs")); err == nil {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding e2e/node: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(d, "e2e", "node")
			if _, err := os.Stat(filepath.Join(dir, "client.mjs")); err != nil {
				return "", fmt.Errorf("finding e2e/node under module root %s: %w", d, err)
			}
			return dir, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("finding e2e/node: no go.mod in %s or its parents", wd)
		}
	}
}

// nodeModulesUpToDate reports whether dir/node_modules was installed from
// dir/package-lock.json: npm's hidden lockfile node_modules/.package-lock.json
// must list the same packages as package-lock.json (which also has the root
// package, not installed), and each must be present. If not, it says why.
func nodeModulesUpToDate(dir string) (bool, string) {
	want, err := lockPackages(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false, err.Error()
	}
	delete(want, "")
	got, err := lockPackages(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil {
		return false, err.Error()
	}
	if !reflect.DeepEqual(want, got) {
		return false, "node_modules/.package-lock.json differs from package-lock.json"
	}
	for p := range want {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p), "package.json")); err != nil {
			return false, fmt.Sprintf("package %s is missing: %v", p, err)
		}
	}
	return true, ""
}

// lockPackages reads the "packages" map of an npm lockfile (version 2 or 3).
func lockPackages(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading npm lockfile: %w", err)
	}
	var lock struct {
		Packages map[string]any `json:"packages"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("decoding npm lockfile %s: %w", path, err)
	}
	if lock.Packages == nil {
		return nil, fmt.Errorf("npm lockfile %s has no packages", path)
	}
	return lock.Packages, nil
}

// lockNodeDir takes a lock on dir shared by all processes on the machine,
// a directory in os.TempDir named after dir, and returns its release. It
// waits for another holder at most npmLockStale, and breaks a lock older
// than that (left by a killed process).
func lockNodeDir(dir string) (func(), error) {
	sum := sha256.Sum256([]byte(dir))
	lock := filepath.Join(os.TempDir(), "radkit-e2e-npm-ci-"+hex.EncodeToString(sum[:8])+".lock")
	deadline := time.Now().Add(npmLockStale)
	for {
		err := os.Mkdir(lock, 0o700)
		if err == nil {
			return func() { _ = os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("taking npm ci lock %s: %w", lock, err)
		}
		if fi, statErr := os.Stat(lock); statErr == nil && time.Since(fi.ModTime()) > npmLockStale {
			_ = os.Remove(lock)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("taking npm ci lock %s: still held after %s", lock, npmLockStale)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
