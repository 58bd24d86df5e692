package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	accessv1 "github.com/radkit/radkit-access-facade/gen/radkit/access/v1"
)

// serviceID is the seeded service every status call asks for.
const serviceID = "1ryq-e8n8-5g5n"

// callTimeout bounds one call, so that a stuck call cannot hang a cell.
const callTimeout = 30 * time.Second

// callFunc makes one call as worker w.
type callFunc func(ctx context.Context, w int) error

// clients holds the connections the modes share.
type clients struct {
	upstreamHTTP *http.Client // A
	facadeHTTP   *http.Client // C
	grpcConns    []*grpc.ClientConn
	access       []accessv1.AccessServiceClient
	health       healthpb.HealthClient // H
	statusURL    string                // A
	gatewayURL   string                // C
	bearer       string                // A
	facadeAuth   string                // C's Authorization with -production, else ""
}

// newClients dials the facade (conns gRPC connections) and prepares HTTP
// clients whose idle pools hold maxInflight connections.
//
// With a callerKey (-production), every call to the facade sends it, as
// an authenticated caller does.
func newClients(f *facadeProc, emuURL, bearer, callerKey string, conns, maxInflight int) (*clients, error) {
	c := &clients{
		upstreamHTTP: keepAliveClient(maxInflight),
		facadeHTTP:   keepAliveClient(maxInflight),
		statusURL:    emuURL + "/public/admin/service/status/" + url.PathEscape(serviceID),
		gatewayURL:   "http://" + f.httpAddr + "/v1/services/" + url.PathEscape(serviceID) + "/status",
		bearer:       "Bearer " + bearer,
	}
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if callerKey != "" {
		c.facadeAuth = "Bearer " + callerKey
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(keyCredentials{"authorization": c.facadeAuth}))
	}
	for range max(conns, 1) {
		// Each NewClient is its own channel and so its own HTTP/2 connection.
		conn, err := grpc.NewClient(f.grpcAddr, dialOpts...)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("dial facade: %w", err)
		}
		c.grpcConns = append(c.grpcConns, conn)
		c.access = append(c.access, accessv1.NewAccessServiceClient(conn))
	}
	c.health = healthpb.NewHealthClient(c.grpcConns[0])
	return c, nil
}

// keyCredentials sends a caller key with every call, over plaintext
// loopback (the bench's facade has no TLS).
type keyCredentials map[string]string

func (k keyCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return k, nil
}

func (keyCredentials) RequireTransportSecurity() bool { return false }

func (c *clients) close() {
	for _, conn := range c.grpcConns {
		_ = conn.Close()
	}
	c.upstreamHTTP.CloseIdleConnections()
	c.facadeHTTP.CloseIdleConnections()
}

// keepAliveClient is an HTTP/1.1 keep-alive client that keeps up to n idle
// connections to one host, so that n workers never redial.
func keepAliveClient(n int) *http.Client {
	return &http.Client{
		Timeout: callTimeout,
		Transport: &http.Transport{
			MaxIdleConns:        n + 16,
			MaxIdleConnsPerHost: n + 16,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// getOK sends GET u and drains the body; non-200 is an error.
func getOK(ctx context.Context, hc *http.Client, u, auth string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// mode is one way of calling, A to D.
type mode struct {
	key   string // "A"
	name  string
	call  callFunc
	route string // emulator route this mode's calls reach
	// server is the process whose CPU and memory the cell reports; nil
	// for the facade.
	server *proc
}

// modes returns A-D over c.
func (c *clients) modes() []mode {
	pick := func(w int) accessv1.AccessServiceClient { return c.access[w%len(c.access)] }
	statusReq := &accessv1.GetServiceStatusRequest{ServiceId: serviceID}
	otpReq := &accessv1.GenerateOTPRequest{Owner: "bench@example.com", EndpointId: "bench-endpoint", Description: "radkit-access-bench"}
	return []mode{
		{key: "A", name: "upstream REST direct (limit)", route: routeStatus, call: func(ctx context.Context, _ int) error {
			return getOK(ctx, c.upstreamHTTP, c.statusURL, c.bearer)
		}},
		{key: "B", name: "GetServiceStatus gRPC via facade", route: routeStatus, call: func(ctx context.Context, w int) error {
			_, err := pick(w).GetServiceStatus(ctx, statusReq)
			return err
		}},
		{key: "C", name: "GetServiceStatus HTTP via gateway", route: routeStatus, call: func(ctx context.Context, _ int) error {
			return getOK(ctx, c.facadeHTTP, c.gatewayURL, c.facadeAuth)
		}},
		{key: "D", name: "GenerateOTP gRPC via facade", route: routeOTP, call: func(ctx context.Context, w int) error {
			_, err := pick(w).GenerateOTP(ctx, otpReq)
			return err
		}},
	}
}

// floorMode is H: a gRPC call to the facade that does no upstream work
// (grpc.health.v1 Check, through the same server, connection and
// interceptors as B). Measured at 1 in flight, its latency is what one
// extra loopback gRPC round trip costs on this machine, the part of the
// added latency (B - A) that no facade code can remove.
func (c *clients) floorMode() mode {
	req := &healthpb.HealthCheckRequest{}
	return mode{key: "H", name: "health Check gRPC via facade (floor)", call: func(ctx context.Context, _ int) error {
		_, err := c.health.Check(ctx, req)
		return err
	}}
}

// Emulator routes, as its admin counters name them.
const (
	routeStatus = "/public/admin/service/status/"
	routeOTP    = "/public/otp/certificate"
	routeToken  = "/oauth2/token"
)

// sample is one completed call.
type sample struct {
	start time.Duration // since the run started
	lat   time.Duration
}

// loadResult is what a closed-loop run measured.
type loadResult struct {
	samples    []sample // successful calls only
	errors     int64
	firstError string
	reasons    map[string]int64 // non-OK calls by reasonOf
	elapsed    time.Duration
	started    time.Time
}

// callOnce makes one call as worker w, bounded by callTimeout, and returns
// its latency counted from t0, when the worker decided to make it.
func callOnce(ctx context.Context, fn callFunc, w int, t0 time.Time) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := fn(cctx, w)
	return time.Since(t0), err
}

// runLoad runs n closed-loop workers calling fn for d and returns every
// successful call's latency. Calls started before the end finish and count;
// elapsed runs to the last one's end.
func runLoad(ctx context.Context, n int, d time.Duration, fn callFunc) loadResult {
	var (
		wg       sync.WaitGroup
		errs     atomic.Int64
		firstErr sync.Once
		res      loadResult
		perW     = make([][]sample, n)
		mu       sync.Mutex
	)
	res.reasons = map[string]int64{}
	res.started = time.Now()
	end := res.started.Add(d)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := make([]sample, 0, 1024)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				lat, err := callOnce(ctx, fn, w, t0)
				if err != nil {
					errs.Add(1)
					firstErr.Do(func() { res.firstError = err.Error() })
					mu.Lock()
					res.reasons[reasonOf(err)]++
					mu.Unlock()
					continue
				}
				s = append(s, sample{start: t0.Sub(res.started), lat: lat})
			}
			perW[w] = s
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(res.started)
	res.errors = errs.Load()
	total := 0
	for _, s := range perW {
		total += len(s)
	}
	res.samples = make([]sample, 0, total)
	for _, s := range perW {
		res.samples = append(res.samples, s...)
	}
	return res
}

// reasonOf names a failed call as the facade tells it: the gRPC code and
// the ErrorInfo reason ("DeadlineExceeded/UPSTREAM_TIMEOUT"), the code
// alone when there is no ErrorInfo, or "other" for a call that is not
// gRPC.
func reasonOf(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return "other"
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code().String() + "/" + info.GetReason()
		}
	}
	return st.Code().String()
}

// latencies returns the sorted latencies of samples.
func latencies(samples []sample) []time.Duration {
	l := make([]time.Duration, len(samples))
	for i, s := range samples {
		l[i] = s.lat
	}
	slices.Sort(l)
	return l
}

// percentile returns the q-quantile (0..1) of sorted by the nearest-rank
// method; 0 for no data.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// fetchBearer gets an access token from the emulator's token endpoint with
// Basic client credentials, as any OAuth2 client would.
func fetchBearer(ctx context.Context, emuURL, id, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, emuURL+"/oauth2/token?grant_type=client_credentials", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return "", fmt.Errorf("token response (HTTP %d): %w", resp.StatusCode, err)
	}
	if tr.AccessToken == "" {
		return "", fmt.Errorf("token response (HTTP %d): no access_token", resp.StatusCode)
	}
	return tr.AccessToken, nil
}

// emuAdmin talks to the emulator's admin API.
type emuAdmin struct {
	base string // emulator base URL + admin prefix
	hc   *http.Client
}

func newEmuAdmin(emuURL string) *emuAdmin {
	return &emuAdmin{base: emuURL + "/_emulator", hc: &http.Client{Timeout: 10 * time.Second}}
}

// counters returns the emulator's per-route call counters.
func (a *emuAdmin) counters(ctx context.Context) (map[string]int64, error) {
	var c struct {
		Calls map[string]int64 `json:"calls"`
	}
	if err := a.readCounters(ctx, &c); err != nil {
		return nil, err
	}
	if c.Calls == nil {
		return nil, errors.New("counters: no calls")
	}
	return c.Calls, nil
}

// readCounters decodes the emulator's counters (GET /_emulator/counters)
// into v, which names the part it wants.
func (a *emuAdmin) readCounters(ctx context.Context, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/counters", nil)
	if err != nil {
		return fmt.Errorf("counters: %w", err)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("counters: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("counters (HTTP %d): %w", resp.StatusCode, err)
	}
	return nil
}

// setLatency sets the emulator's added latency on route ("" for all).
func (a *emuAdmin) setLatency(ctx context.Context, route string, d time.Duration) error {
	return a.put(ctx, "set latency", "/latency", route, fmt.Sprintf(`{"latency": %q}`, d.String()))
}

// put sends one knob to the emulator's admin API (path under /_emulator,
// scoped to route unless it is ""), which answers 204 when it took it.
func (a *emuAdmin) put(ctx context.Context, what, path, route, body string) error {
	u := a.base + path
	if route != "" {
		u += "?route=" + url.QueryEscape(route)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: HTTP %d: %s", what, resp.StatusCode, b)
	}
	return nil
}
