package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// receiver is a webhook endpoint in the bench's own process: it answers
// every delivery 204 at once and counts them, so that a run with events on
// pays for signing and sending every event, and says how far delivery
// kept up.
type receiver struct {
	srv        *http.Server
	url        string
	deliveries atomic.Int64
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20))
		if req.Header.Get("webhook-id") != "" {
			r.deliveries.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) stop() { _ = r.srv.Close() }

// subscribe creates the one endpoint of the run, for every event type.
func (r *receiver) subscribe(ctx context.Context, serverURL, key string, client *http.Client) error {
	c := loyaltyv1connect.NewWebhookServiceClient(client, serverURL)
	req := connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "bench-endpoint", Url: r.url, Description: "loyaltybench receiver"})
	req.Header().Set("Authorization", "Bearer "+key)
	if _, err := c.CreateWebhookEndpoint(ctx, req); err != nil {
		return fmt.Errorf("create the bench's webhook endpoint: %w", err)
	}
	return nil
}
