package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/rpc"
)

// outage is a TCP proxy in front of the database that can go down (every
// connection cut, new ones refused) and come back on the same address, as
// a database server restarting does.
type outage struct {
	target, addr string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
	// thawed is closed while bytes flow; freeze replaces it with an open
	// one, and the connections hold what they read until thaw closes it:
	// a database that stops answering without closing anything.
	thawed chan struct{}
}

func startOutage(t *testing.T, target string) *outage {
	t.Helper()
	o := &outage{target: target, addr: "127.0.0.1:0", thawed: make(chan struct{})}
	close(o.thawed)
	o.up(t)
	t.Cleanup(func() { o.down() })
	return o
}

// databaseBehindProxy is a test database, and a pool that reaches it
// through an outage proxy (which speaks to its Unix socket).
func databaseBehindProxy(t *testing.T) (direct *database.DB, proxy *outage, viaProxy *database.DB) {
	t.Helper()
	direct = dbtest.PostgreSQL(t)
	cfg := direct.Pool.Config().ConnConfig
	proxy = startOutage(t, fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port))
	host, port, _ := net.SplitHostPort(proxy.addr)
	viaProxy, err := database.Open(context.Background(),
		fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable connect_timeout=2", host, port, cfg.User, cfg.Database), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { go viaProxy.Close() })
	return direct, proxy, viaProxy
}

// writeOnceAfter retries the stay the outage refused, once the database
// is back: it is recorded, its replay answers the same transaction, and
// the database holds it once.
func writeOnceAfter(t *testing.T, e *env, direct *database.DB, member string) {
	t.Helper()
	c := e.clients(e.bookingKey)
	res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00")))
	if err != nil {
		t.Fatalf("the write retried once the database answers: %v", err)
	}
	again, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00")))
	if err != nil || again.Msg.GetTransaction().GetTransactionId() != res.Msg.GetTransaction().GetTransactionId() {
		t.Fatalf("its replay: %v, %v", again, err)
	}
	var n int
	if err := direct.Pool.QueryRow(e.ctx, `SELECT count(*) FROM transactions WHERE metadata->>'stay_id' = 'B-1'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d transactions of the stay (%v), want 1", n, err)
	}
}

func (o *outage) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.ln, o.addr = ln, ln.Addr().String()
	o.mu.Unlock()
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("unix", o.target)
			if err != nil {
				client.Close()
				continue
			}
			o.mu.Lock()
			o.conns = append(o.conns, client, server)
			o.mu.Unlock()
			go o.pipe(server, client)
			go o.pipe(client, server)
		}
	}()
}

// pipe copies src to dst, holding what it read while the proxy is frozen.
func (o *outage) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			o.mu.Lock()
			thawed := o.thawed
			o.mu.Unlock()
			<-thawed
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (o *outage) freeze() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.thawed = make(chan struct{})
}

func (o *outage) thaw() {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.thawed)
}

func (o *outage) down() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil {
		o.ln.Close()
	}
	for _, c := range o.conns {
		c.Close()
	}
	o.conns = nil
}

// TestADatabaseOutageAnswersUnavailable: while the database is down, every
// answer is UNAVAILABLE (retry with the same key), never INTERNAL; once it
// is back the service serves again without a restart, and a write retried
// with its key is recorded once.
func TestADatabaseOutageAnswersUnavailable(t *testing.T) {
	direct, proxy, viaProxy := databaseBehindProxy(t)
	e := newEnvOn(t, viaProxy)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")

	healthIs := func(want grpchealth.Status) { t.Helper(); checkHealth(t, e, want) }
	healthIs(grpchealth.StatusServing)
	probeIs(t, e, "/readyz", http.StatusOK)

	proxy.down()
	// A load balancer hears that this instance cannot serve (the last
	// answer stands a second), by gRPC health or by plain HTTP.
	time.Sleep(1100 * time.Millisecond)
	healthIs(grpchealth.StatusNotServing)
	probeIs(t, e, "/readyz", http.StatusServiceUnavailable)
	probeIs(t, e, "/livez", http.StatusOK)
	for i := range 4 {
		_, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
		var ce *connect.Error
		if err != nil && (!errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable) {
			t.Fatalf("read %d during the outage: %v, want UNAVAILABLE", i, err)
		}
		_, err = c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00")))
		if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
			t.Fatalf("write %d during the outage: %v, want UNAVAILABLE", i, err)
		}
	}

	proxy.up(t)
	time.Sleep(1100 * time.Millisecond)
	healthIs(grpchealth.StatusServing)
	probeIs(t, e, "/readyz", http.StatusOK)
	writeOnceAfter(t, e, direct, member)
}

// checkHealth wants the gRPC health check's answer to be want.
func checkHealth(t *testing.T, e *env, want grpchealth.Status) {
	t.Helper()
	res, err := grpchealth.NewClient(e.server.Client(), e.server.URL).Check(e.ctx, &grpchealth.CheckRequest{Service: rpc.Services[0]})
	if err != nil || res.Status != want {
		t.Fatalf("health: %v, %v; want %v", res, err, want)
	}
}

// probeIs checks the HTTP status of a plain GET of path, as a load
// balancer's probe sends it (no key).
func probeIs(t *testing.T, e *env, path string, want int) {
	t.Helper()
	res, err := e.server.Client().Get(e.server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != want {
		t.Fatalf("GET %s: HTTP %d, want %d", path, res.StatusCode, want)
	}
}

// TestASilentDatabaseAnswersUnavailableInTime: a database that stops
// answering, without closing anything (a frozen server, a partitioned
// network), holds no request for ever, not even the key lookup that comes
// before the client's deadline applies: within the server's limits every
// answer is UNAVAILABLE (retry with the same key), and once the database
// answers again the retried write is recorded once.
func TestASilentDatabaseAnswersUnavailableInTime(t *testing.T) {
	direct, proxy, viaProxy := databaseBehindProxy(t)
	limits := rpc.Limits{Call: time.Second, KeyLookup: time.Second}
	e := newEnvWith(t, viaProxy, func(cfg *rpc.Config) { cfg.Limits = limits })
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	// A key the server has not seen: its lookup goes to the database.
	_, fresh, err := apikeys.New(e.ledger, e.clock.Now).Create(e.ctx, "test", "fresh-key", apikeys.CreateRequest{Name: "app", Role: apikeys.RoleBookingChannel})
	if err != nil {
		t.Fatal(err)
	}

	proxy.freeze()
	// Well past the limits, so that a hang fails the test rather than
	// stalling it.
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"a read with a key not yet looked up", func() error {
			_, err := e.clients(fresh).members.GetMember(ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
			return err
		}},
		{"a write", func() error {
			_, err := c.booking.RecordStay(ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00")))
			return err
		}},
	} {
		started := time.Now()
		err := call.do()
		took := time.Since(started)
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
			t.Fatalf("%s while the database is silent: %v after %s, want UNAVAILABLE", call.name, err, took)
		}
		if took > 4*limits.Call {
			t.Errorf("%s was answered after %s; the limit is %s", call.name, took, limits.Call)
		}
	}

	proxy.thaw()
	writeOnceAfter(t, e, direct, member)
}

// TestAReadOnlyDatabaseAnswersUnavailable: a database that answers but
// takes no writes (a standby during a failover, a database made
// read-only) makes every write UNAVAILABLE (retry with the same key),
// never INTERNAL, and the health check NOT_SERVING; once it takes writes
// again, the retried write is recorded once.
func TestAReadOnlyDatabaseAnswersUnavailable(t *testing.T) {
	direct, _, viaProxy := databaseBehindProxy(t)
	e := newEnvOn(t, viaProxy)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	healthIs := func(want grpchealth.Status) {
		t.Helper()
		time.Sleep(1100 * time.Millisecond) // the last answer stands a second
		checkHealth(t, e, want)
	}

	// One connection of its own sets the database's mode and makes every
	// other session start again in it.
	admin, err := direct.Pool.Acquire(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Release()
	setReadOnly := func(mode string) {
		t.Helper()
		var name string
		if err := admin.QueryRow(e.ctx, `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(e.ctx, `ALTER DATABASE `+pgx.Identifier{name}.Sanitize()+` SET default_transaction_read_only = `+mode); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(e.ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
	}
	setReadOnly("on")
	healthIs(grpchealth.StatusNotServing)
	probeIs(t, e, "/readyz", http.StatusServiceUnavailable)
	for i := range 3 {
		_, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00")))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
			t.Fatalf("write %d to a read-only database: %v, want UNAVAILABLE", i, err)
		}
	}
	setReadOnly("off")
	healthIs(grpchealth.StatusServing)
	writeOnceAfter(t, e, direct, member)
}
