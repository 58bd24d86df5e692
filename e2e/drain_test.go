package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/internal/testkit"
)

// watchRequest is the encoded WatchServiceStatusRequest of serviceID.
func watchRequest(t *testing.T, serviceID string) []byte {
	t.Helper()
	req, err := proto.Marshal(&accessv1.WatchServiceStatusRequest{ServiceId: serviceID})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// openNonReadingHTTP sends a watch request of serviceID over HTTP/1.1 on
// a raw TCP connection and never reads the answer.
func openNonReadingHTTP(t *testing.T, addr, serviceID string) {
	t.Helper()
	conn := testkit.DialNonReader(t, addr)
	if _, err := fmt.Fprintf(conn, "GET /v1/services/%s/status:watch HTTP/1.1\r\nHost: %s\r\n\r\n", serviceID, addr); err != nil {
		t.Fatalf("HTTP request: %v", err)
	}
}

// TestBinaryDrainsStuckWatches stops the binary under watch streams whose
// clients do not read (raw HTTP/2 with a zero window, raw TCP over HTTP)
// and two that do: the process exits within --shutdown-timeout plus a
// second, counted from SIGTERM, and the readers get UNAVAILABLE with
// reason SHUTTING_DOWN. A heartbeat of a millisecond fills what the
// non-readers leave of the flow-control windows and socket buffers within
// a second or two, so that the server's sends to them are blocked when
// the signal comes.
func TestBinaryDrainsStuckWatches(t *testing.T) {
	const shutdownTimeout = 4 * time.Second
	p, err := startBinary(t, []string{
		"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--shutdown-timeout", shutdownTimeout.String(), "--watch-heartbeat", "1ms",
	}, binaryEnv())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", p.grpcAddr, err)
	}
	defer conn.Close()
	waitServing(t, conn)

	const service = "1ryq-e8n8-5g5n"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The reader over gRPC counts what it gets and reports how its stream
	// ended.
	var read atomic.Int64
	grpcEnd := make(chan error, 1)
	stream, err := accessv1.NewAccessServiceClient(conn).WatchServiceStatus(ctx, &accessv1.WatchServiceStatusRequest{ServiceId: service})
	if err != nil {
		t.Fatalf("WatchServiceStatus: %v", err)
	}
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				grpcEnd <- err
				return
			}
			read.Add(1)
		}
	}()
	// The reader over HTTP reports its stream's last line.
	httpEnd := make(chan string, 1)
	httpConn, err := net.Dial("tcp", p.httpAddr)
	if err != nil {
		t.Fatalf("dial %s: %v", p.httpAddr, err)
	}
	defer httpConn.Close()
	if _, err := fmt.Fprintf(httpConn, "GET /v1/services/%s/status:watch HTTP/1.1\r\nHost: %s\r\n\r\n", service, p.httpAddr); err != nil {
		t.Fatalf("HTTP request: %v", err)
	}
	go func() {
		var last string
		sc := bufio.NewScanner(httpConn)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "{") {
				last = l
			}
		}
		httpEnd <- last
	}()

	for range 2 {
		testkit.OpenNonReadingGRPC(t, p.grpcAddr, accessv1.AccessService_WatchServiceStatus_FullMethodName, watchRequest(t, service), 2)
	}
	for range 3 {
		openNonReadingHTTP(t, p.httpAddr, service)
	}
	// Thousands of heartbeats to the reader: the non-readers, sent as
	// many, have long filled what their windows and buffers hold.
	if !eventually(readyTimeout, func() bool { return read.Load() >= 5000 }) {
		t.Fatalf("the reading stream got %d messages, want 5000 heartbeats", read.Load())
	}

	signalled := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.Exited():
	case <-time.After(stopTimeout):
		t.Fatalf("the facade did not exit within %s of SIGTERM\nstderr:\n%s", stopTimeout, p.Stderr.String())
	}
	took := time.Since(signalled)
	t.Logf("exited %v after SIGTERM (--shutdown-timeout %v)", took.Round(time.Millisecond), shutdownTimeout)
	if took > shutdownTimeout+time.Second {
		t.Errorf("the facade exited %v after SIGTERM, want within --shutdown-timeout %v plus 1s", took.Round(time.Millisecond), shutdownTimeout)
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}

	err = <-grpcEnd // the process is gone: the stream has ended
	if status.Code(err) != codes.Unavailable || reasonOfErr(err) != accessv1.ErrorReason_SHUTTING_DOWN.String() {
		t.Errorf("the reading gRPC stream ended with %v, want UNAVAILABLE with reason %s", err, accessv1.ErrorReason_SHUTTING_DOWN.String())
	}
	if last := <-httpEnd; !strings.Contains(last, `"error"`) || !strings.Contains(last, accessv1.ErrorReason_SHUTTING_DOWN.String()) {
		t.Errorf("the reading HTTP stream's last line is %s, want an error with reason %s", last, accessv1.ErrorReason_SHUTTING_DOWN.String())
	}
	// Every stream, read or not, was ended by the facade with the status
	// the reader got, none by its connection closing under it.
	var ended int
	for _, line := range p.logLines("finished call") {
		if line["grpc.method"] != "WatchServiceStatus" {
			continue
		}
		ended++
		if line["grpc.error"] != status.Convert(err).Err().Error() {
			t.Errorf("a %v watch stream ended with %v, want %v like the readers", line["protocol"], line["grpc.error"], err)
		}
	}
	if want := 2*2 + 3 + 2; ended != want {
		t.Errorf("%d watch streams logged their end, want %d", ended, want)
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", p.Stderr.String())
	}
}
