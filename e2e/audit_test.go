package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// TestAuditRecordOnDiskBeforeAnswer checks SECURITY.md's promise that
// every OTP a caller holds has its audit record: n GenerateOTP calls from
// many goroutines, and the binary is SIGKILLed the moment the last answer
// arrives, leaving no time for a batch of log lines to be written after
// the answers. Its output must hold exactly n audit records of successful
// GenerateOTP calls.
func TestAuditRecordOnDiskBeforeAnswer(t *testing.T) {
	const (
		calls   = 200
		workers = 40
	)
	p, err := startBinary(t,
		[]string{"--emulator", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"},
		binaryEnv())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", p.grpcAddr, err)
	}
	defer conn.Close()
	waitServing(t, conn)
	client := accessv1.NewAccessServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	jobs := make(chan int, calls)
	for i := range calls {
		jobs <- i
	}
	close(jobs)
	var left, failed atomic.Int32
	left.Store(calls)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				_, err := client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{Owner: "audit@example.com", EndpointId: "ep-audit"})
				if err != nil {
					failed.Add(1)
					t.Errorf("GenerateOTP: %v", err)
				}
				if left.Add(-1) == 0 {
					// The last answer is in: kill at once.
					_ = p.Cmd.Process.Kill()
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-p.Exited():
	case <-time.After(stopTimeout):
		t.Fatalf("the facade did not exit within %s of SIGKILL", stopTimeout)
	}

	records := 0
	sc := bufio.NewScanner(strings.NewReader(p.Stderr.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line["log"] == "audit" && line["rpc"] == "GenerateOTP" && line["outcome"] == "OK" {
			records++
		}
	}
	if want := calls - int(failed.Load()); records != want {
		t.Errorf("%d audit records of successful GenerateOTP calls in the output of the killed facade, want %d (one per OTP handed out)", records, want)
	}
}
