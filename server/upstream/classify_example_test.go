package upstream_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/radkit/radkit-access-facade/server/emulator"
	"github.com/radkit/radkit-access-facade/server/upstream"
)

// The classifiers say what a failure means, however it was wrapped: here,
// credentials that the token endpoint refuses (the call itself was never
// sent, and no retry can help), then a service the upstream does not know.
func Example_classifiers() {
	emu, err := emulator.New(emulator.Config{Seed: emulator.DefaultSeed()})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := emulator.DefaultSeed().Clients[0]

	for _, secret := range []string{"not-the-secret", client.Secret} {
		c, err := upstream.New(upstream.Config{BaseURL: srv.URL, ClientID: client.ID, ClientSecret: secret})
		if err != nil {
			fmt.Println(err)
			return
		}
		_, err = c.ServiceStatus(ctx, "no-such-service")
		fmt.Printf("op=%s status=%d setup-failure=%t never-reached=%t transient=%t\n",
			upstream.OpOf(err), upstream.StatusCode(err), upstream.IsSetupFailure(err),
			upstream.NeverReached(err), upstream.IsTransient(err))
		_ = c.Close()
	}
	// Output:
	// op=token status=401 setup-failure=true never-reached=true transient=false
	// op=status status=404 setup-failure=false never-reached=false transient=false
}
