package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// receiver is a webhook endpoint in the bench's own process: it checks
// every request's signature as a receiver would, answers 204 and counts
// the events, so that a run with events on pays for signing, sending and
// receiving every event, and says how far delivery kept up. It does not
// decode the events: a consumer's own work runs on its own machines, not
// on the cores the service is measured on (decoding a batch with
// encoding/json cost about 5 us an event here, counting them 1.2).
type receiver struct {
	srv    *http.Server
	url    string
	secret atomic.Pointer[[]byte]
	// deliveries counts events received (a batch's each); requests the
	// requests; forged the requests whose signature did not verify.
	deliveries, requests, forged atomic.Int64
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(r.serve)}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.requests.Add(1)
	if !r.verified(req.Header, body) {
		r.forged.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	events := int64(1)
	if req.Header.Get("Content-Type") == "application/cloudevents-batch+json" {
		n, ok := countBatch(body)
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		events = int64(n)
	}
	r.deliveries.Add(events)
	w.WriteHeader(http.StatusNoContent)
}

// countBatch counts the elements of a JSON array, and reports false when
// body is not one (it checks that brackets close outside strings, not
// that every value is JSON: the signature vouches for the sender).
func countBatch(body []byte) (int, bool) {
	body = bytes.TrimLeft(body, " \t\n\r")
	if len(body) == 0 || body[0] != '[' {
		return 0, false
	}
	depth, count := 0, 0
	inString, escaped, closed := false, false, false
	for _, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case closed:
			return 0, false // something after the array
		case c == ']' || c == '}':
			depth--
			closed = depth == 0
		case c == ',' && depth == 1:
			count++
		default:
			if depth == 1 && count == 0 {
				count = 1 // the first element begins
			}
			switch c {
			case '"':
				inString = true
			case '[', '{':
				depth++
			}
		}
	}
	return count, closed
}

// verified checks the Standard Webhooks signature: HMAC-SHA256 of
// "id.timestamp.body" with the secret's bytes, one of the header's "v1,".
func (r *receiver) verified(h http.Header, body []byte) bool {
	key := r.secret.Load()
	if key == nil {
		return false
	}
	mac := hmac.New(sha256.New, *key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if got, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "v1,")); err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func (r *receiver) stop() { _ = r.srv.Close() }

// subscribe creates the one endpoint of the run, for every event type,
// batchSize events per request.
func (r *receiver) subscribe(ctx context.Context, serverURL, key string, batchSize int, client *http.Client) error {
	c := loyaltyv1connect.NewWebhookServiceClient(client, serverURL)
	req := connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "bench-endpoint", Url: r.url, Description: "loyaltybench receiver", BatchSize: int32(batchSize)})
	req.Header().Set("Authorization", "Bearer "+key)
	res, err := c.CreateWebhookEndpoint(ctx, req)
	if err != nil {
		return fmt.Errorf("create the bench's webhook endpoint: %w", err)
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(res.Msg.GetSecret(), "whsec_"))
	if err != nil {
		return fmt.Errorf("the bench's webhook secret: %w", err)
	}
	r.secret.Store(&secret)
	return nil
}

// sampleBacklogAge reads loyaltyd's webhook backlog age every interval
// until the returned function is called, which returns the largest and
// the last age read, in seconds.
func sampleBacklogAge(ctx context.Context, metricsURL string, interval time.Duration) func() (float64, float64) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var largest, last float64
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if m, err := scrapeCounters(ctx, metricsURL, metricBacklogAge); err == nil {
				last = m[metricBacklogAge]
				largest = max(largest, last)
			}
		}
	}()
	return func() (float64, float64) {
		cancel()
		<-done
		return largest, last
	}
}

// metricBacklogAge is loyaltyd's gauge of its webhook backlog's age.
const metricBacklogAge = "loyalty_webhook_backlog_age_seconds"
