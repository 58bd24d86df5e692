// Command floor is bench tooling, not product: the floor of any Go facade
// for the RADKit Access API, which radkit-access-bench runs as its modes M
// and Mo, and after the facade in mode W. It serves
// radkit.access.v1.AccessService on the same generated stubs as the
// facade, and each unary handler makes the one upstream HTTP call with a
// shared keep-alive client and a token fetched once at start: no
// interceptors, no validation, no logging, no metrics, no retries, no
// coalescing. Errors are returned as codes.Unavailable with no detail.
// Whatever a facade adds on top of this is its own cost. Its
// WatchServiceStatus looks each watched service up once, whatever its
// watchers, sends one message and holds the stream open.
//
//	floor --addr 127.0.0.1:0 --upstream-url http://127.0.0.1:8089 [--pprof 127.0.0.1:6060]
//
// The client ID comes from RADKIT_ACCESS_CLIENT_ID and the secret from the
// file named by RADKIT_ACCESS_CLIENT_SECRET_FILE, as the facade reads them.
// It prints "floor listening on <addr>" once it serves, and stops on
// SIGTERM.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// maxBody bounds an upstream body read.
const maxBody = 64 << 10

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "gRPC listen address")
	base := fs.String("upstream-url", "", "upstream (emulator) base URL")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this address, to profile the floor beside the facade (off when empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret, err := os.ReadFile(os.Getenv("RADKIT_ACCESS_CLIENT_SECRET_FILE"))
	if err != nil {
		return fmt.Errorf("client secret: %w", err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute,
	}}
	s := &service{hc: hc, base: strings.TrimSuffix(*base, "/")}
	if s.bearer, err = fetchToken(ctx, hc, s.base, os.Getenv("RADKIT_ACCESS_CLIENT_ID"), strings.TrimSpace(string(secret))); err != nil {
		return err
	}
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		ps := &http.Server{Addr: *pprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = ps.ListenAndServe() }()
		defer ps.Close()
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	gs := grpc.NewServer()
	accessv1.RegisterAccessServiceServer(gs, s)
	healthpb.RegisterHealthServer(gs, health.NewServer()) // for the harness's readiness wait
	go func() {
		<-ctx.Done()
		gs.GracefulStop()
	}()
	fmt.Printf("floor listening on %s\n", lis.Addr())
	if err := gs.Serve(lis); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// service makes the one upstream call per unary RPC (see
// WatchServiceStatus for streams).
type service struct {
	accessv1.UnimplementedAccessServiceServer
	hc      *http.Client
	base    string
	bearer  string   // "Bearer <token>"
	watched sync.Map // service ID → *watchedStatus
}

func (s *service) GetServiceStatus(ctx context.Context, req *accessv1.GetServiceStatusRequest) (*accessv1.GetServiceStatusResponse, error) {
	st, err := s.status(ctx, req.GetServiceId())
	if err != nil {
		return nil, err
	}
	return &accessv1.GetServiceStatusResponse{ServiceId: st.ServiceID, Active: st.Active, Online: st.Online}, nil
}

// WatchServiceStatus sends the service's status once and holds the stream
// open until the client leaves: no polls, no heartbeats. It is what one
// open gRPC server stream costs with nothing above it, mode W's floor.
// Each service is looked up once, whatever its watchers (as the facade
// polls each watched service once per interval): the floor measures the
// streams, not ten thousand upstream calls and their connections.
func (s *service) WatchServiceStatus(req *accessv1.WatchServiceStatusRequest, stream grpc.ServerStreamingServer[accessv1.WatchServiceStatusResponse]) error {
	ctx := stream.Context()
	v, _ := s.watched.LoadOrStore(req.GetServiceId(), &watchedStatus{})
	w := v.(*watchedStatus)
	// Not the first watcher's cancellation: its lookup serves them all
	// (the client's timeout still bounds it).
	w.once.Do(func() { w.st, w.err = s.status(context.WithoutCancel(ctx), req.GetServiceId()) })
	st, err := w.st, w.err
	if err != nil {
		return err
	}
	if err := stream.Send(&accessv1.WatchServiceStatusResponse{ServiceId: st.ServiceID, Active: st.Active, Online: st.Online, Kind: accessv1.WatchServiceStatusResponse_KIND_INITIAL}); err != nil {
		return err
	}
	<-ctx.Done()
	return status.FromContextError(ctx.Err()).Err()
}

// watchedStatus is a watched service's one lookup.
type watchedStatus struct {
	once sync.Once
	st   serviceStatus
	err  error
}

// serviceStatus is the upstream's answer to a status lookup.
type serviceStatus struct {
	ServiceID string `json:"service_id"`
	Active    bool   `json:"active"`
	Online    bool   `json:"online"`
}

// status looks a service's status up upstream.
func (s *service) status(ctx context.Context, serviceID string) (serviceStatus, error) {
	var out serviceStatus
	err := s.do(ctx, http.MethodGet, "/public/admin/service/status/"+url.PathEscape(serviceID), nil, &out)
	return out, err
}

func (s *service) GenerateOTP(ctx context.Context, req *accessv1.GenerateOTPRequest) (*accessv1.GenerateOTPResponse, error) {
	body, err := json.Marshal(map[string]string{"owner": req.GetOwner(), "endpoint_id": req.GetEndpointId(), "description": req.GetDescription()})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	var out struct {
		OTP string `json:"otp"`
	}
	if err := s.do(ctx, http.MethodPost, "/public/otp/certificate", body, &out); err != nil {
		return nil, err
	}
	return &accessv1.GenerateOTPResponse{Otp: out.OTP}, nil
}

// do makes one upstream call and decodes a 200 answer into out.
func (s *service) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	req.Header.Set("Authorization", s.bearer)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return status.Errorf(codes.Unavailable, "upstream HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	return nil
}

// fetchToken gets an access token with client credentials, once.
func fetchToken(ctx context.Context, hc *http.Client, base, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth2/token?grant_type=client_credentials", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&tr); err != nil {
		return "", fmt.Errorf("token response (HTTP %d): %w", resp.StatusCode, err)
	}
	if tr.AccessToken == "" {
		return "", errors.New("token response: no access_token")
	}
	return "Bearer " + tr.AccessToken, nil
}
