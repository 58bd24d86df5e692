package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"regexp"
	"time"

	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// A Client gets and refreshes its access token itself: the caller only
// names the OTP it wants. Here the upstream is the emulator on loopback.
func ExampleClient_GenerateOTP() {
	seed := emulator.DefaultSeed()
	emu, err := emulator.New(emulator.Config{Seed: seed})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()

	c, err := upstream.New(upstream.Config{
		BaseURL:      srv.URL,
		ClientID:     seed.Clients[0].ID,
		ClientSecret: seed.Clients[0].Secret, // from the environment or a file in real life
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	otp, err := c.GenerateOTP(ctx, upstream.OTPRequest{
		Owner:       "user@example.com",
		EndpointID:  "endpoint-1",
		Description: "lab access",
	})
	if err != nil {
		log.Fatal(err)
	}
	// The OTP is a secret of the caller's: show only that it has the
	// guide's shape.
	guideShape := regexp.MustCompile(`^[a-z]{4}-[0-9]{4}-[a-z]{4}-[0-9]{4}$`)
	fmt.Println("OTP shaped like abcd-1234-efgh-5678:", guideShape.MatchString(otp))
	info, _ := c.TokenInfo()
	fmt.Println("token identity:", info.Identity)
	// Output:
	// OTP shaped like abcd-1234-efgh-5678: true
	// token identity: automation@example.com
}

// An answer other than 2xx is an *upstream.Error carrying the upstream's
// status, details and retry hint.
func ExampleClient_ServiceStatus() {
	seed := emulator.DefaultSeed()
	emu, err := emulator.New(emulator.Config{Seed: seed})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()

	c, err := upstream.New(upstream.Config{BaseURL: srv.URL, ClientID: seed.Clients[0].ID, ClientSecret: seed.Clients[0].Secret})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []string{"1ryq-e8n8-5g5n", "no-such-service"} {
		st, err := c.ServiceStatus(ctx, id)
		var upErr *upstream.Error
		switch {
		case errors.As(err, &upErr):
			fmt.Printf("%s: HTTP %d %q (retry: %v)\n", id, upErr.StatusCode, upErr.Details, upErr.Retry)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("%s: active %v, online %v\n", st.ServiceID, st.Active, st.Online)
		}
	}
	// Output:
	// 1ryq-e8n8-5g5n: active true, online true
	// no-such-service: HTTP 404 "Unknown Service ID" (retry: false)
}
