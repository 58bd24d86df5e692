package emulator_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/radkit/radkit-access-facade/server/emulator"
)

// TestStandardOAuth2Client checks that a stock RFC 6749 client (x/oauth2,
// header and form styles) gets and uses tokens, so the emulator is not
// accidentally tailored to one hand-written client.
func TestStandardOAuth2Client(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleAutoDetect} {
		cfg := clientcredentials.Config{ClientID: clientID, ClientSecret: clientSecret, TokenURL: e.srv.URL + "/oauth2/token", AuthStyle: style}
		ctx := context.WithValue(t.Context(), oauth2.HTTPClient, e.client)
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatalf("style %v: Token: %v", style, err)
		}
		if tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 59*time.Minute || tok.Extra("identity") != "automation@example.com" {
			t.Errorf("style %v: token = %+v identity %v", style, tok, tok.Extra("identity"))
		}
		c := oauth2.NewClient(ctx, cfg.TokenSource(ctx))
		resp, err := c.Get(e.srv.URL + "/public/admin/service/status/123-123-123")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("style %v: status call = %d", style, resp.StatusCode)
		}
	}
	bad := clientcredentials.Config{ClientID: clientID, ClientSecret: "wrong", TokenURL: e.srv.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}
	_, err := bad.Token(context.WithValue(t.Context(), oauth2.HTTPClient, e.client))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad secret: err = %v, want a 401 RetrieveError", err)
	}
}
