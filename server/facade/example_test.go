package facade_test

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
	"github.com/radkit/radkit-access-facade/server/facade"
)

// Example_generatedClient calls the facade with the generated Go client,
// accessv1.AccessServiceClient. The facade runs in-process in emulator
// mode on loopback, so the example needs no network and no credentials; a
// real client dials the facade's address instead, with TLS and an
// "authorization: Bearer <key>" header where the facade asks for them.
func Example_generatedClient() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The facade, in emulator mode, on ports the kernel picks.
	runCtx, stop := context.WithCancel(ctx)
	f, err := facade.New(runCtx, facade.Config{Emulator: true, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println("facade.New:", err)
		stop()
		return
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			fmt.Println("Run:", err)
		}
	}()

	// The client side: one connection, the generated client on top.
	conn, err := grpc.NewClient(f.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("grpc.NewClient:", err)
		return
	}
	defer conn.Close()
	client := accessv1.NewAccessServiceClient(conn)

	// Wait until the facade is ready (it has discovered the upstream and
	// holds an access token), as a load balancer's probe would.
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		fmt.Println("health Watch:", err)
		return
	}
	for {
		resp, err := watch.Recv()
		if err != nil {
			fmt.Println("health Watch:", err)
			return
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}

	st, err := client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "1ryq-e8n8-5g5n"})
	if err != nil {
		fmt.Println("GetServiceStatus:", err)
		return
	}
	fmt.Printf("service %s: active=%v online=%v\n", st.GetServiceId(), st.GetActive(), st.GetOnline())

	otp, err := client.GenerateOTP(ctx, &accessv1.GenerateOTPRequest{
		Owner:       "automation+customer-a@example.com",
		EndpointId:  "endpoint-identifier",
		Description: "lab router",
	})
	if err != nil {
		fmt.Println("GenerateOTP:", err)
		return
	}
	fmt.Println("one-time password issued:", otp.GetOtp() != "")

	// Errors are gRPC statuses with a google.rpc.ErrorInfo whose reason a
	// program can switch on.
	_, err = client.GetServiceStatus(ctx, &accessv1.GetServiceStatusRequest{ServiceId: "no-such-service"})
	s := status.Convert(err)
	for _, d := range s.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			fmt.Println("unknown service:", s.Code(), info.GetReason())
		}
	}
	// Output:
	// service 1ryq-e8n8-5g5n: active=true online=true
	// one-time password issued: true
	// unknown service: NotFound UPSTREAM_NOT_FOUND
}
