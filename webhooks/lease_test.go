package webhooks_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// A lease always outlasts its attempt's timeout, so that one delivery is
// never sent by two dispatchers at once: a shorter one asked for is
// raised to the timeout and MinLeaseMargin; a longer one is kept, up to
// MaxLease. The lease shows as the endpoint's stream lease while the
// attempt waits for its answer.
func TestALeaseOutlastsItsAttempt(t *testing.T) {
	withTimeout := func(timeout time.Duration) *http.Client { return &http.Client{Timeout: timeout} }
	for _, tc := range []struct {
		name string
		opts webhooks.DispatcherOptions
		want time.Duration
	}{
		{name: "the default is the attempt's timeout and 30 s", want: webhooks.DefaultLease},
		{name: "a lease longer than the attempt is kept", opts: webhooks.DispatcherOptions{Lease: 20 * time.Second}, want: 20 * time.Second},
		{name: "the shortest lease is kept", opts: webhooks.DispatcherOptions{Lease: webhooks.MinLease}, want: webhooks.MinLease},
		{name: "a lease shorter than the attempt is raised", opts: webhooks.DispatcherOptions{Lease: 2 * time.Second}, want: webhooks.MinLease},
		{name: "a negative lease is raised", opts: webhooks.DispatcherOptions{Lease: -time.Second}, want: webhooks.MinLease},
		{name: "a lease longer than MaxLease is lowered", opts: webhooks.DispatcherOptions{Lease: time.Hour}, want: webhooks.MaxLease},
		{name: "a client's own timeout is the attempt's", opts: webhooks.DispatcherOptions{Lease: 5 * time.Second, Client: withTimeout(time.Second)},
			want: 5 * time.Second},
		{name: "a lease shorter than a client's timeout is raised", opts: webhooks.DispatcherOptions{Lease: time.Second, Client: withTimeout(time.Second)},
			want: time.Second + webhooks.MinLeaseMargin},
		{name: "a client slower than MaxLease still gets a lease that outlasts it",
			opts: webhooks.DispatcherOptions{Lease: time.Hour, Client: withTimeout(20 * time.Minute)}, want: 20*time.Minute + webhooks.MinLeaseMargin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, dbtest.New(t), 1)
			release := make(chan struct{})
			rc := newReceiver(t, func(_ call, _ http.ResponseWriter, r *http.Request) int { return hang(r, release) })
			ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
			f.earn("earn", 1, 10)
			f.sequence()

			d := f.dispatcher("d", tc.opts)
			stepped := make(chan error, 1)
			go func() {
				_, err := d.Step(f.ctx)
				stepped <- err
			}()
			<-rc.arrived
			holder, until := f.stream(ep.ID)
			got := until.Sub(start)
			close(release)
			if err := <-stepped; err != nil {
				t.Fatal(err)
			}
			if holder != "d" || got != tc.want {
				t.Errorf("the stream's lease is %s held by %q, want %s held by d", got, holder, tc.want)
			}
		})
	}
}
