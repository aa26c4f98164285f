package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// outage is a TCP proxy in front of the database that can go down (every
// connection cut, new ones refused) and come back on the same address, as
// a database server restarting does.
type outage struct {
	target, addr string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func startOutage(t *testing.T, target string) *outage {
	t.Helper()
	o := &outage{target: target, addr: "127.0.0.1:0"}
	o.up(t)
	t.Cleanup(func() { o.down() })
	return o
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
			go func() { io.Copy(server, client); server.Close() }()
			go func() { io.Copy(client, server); client.Close() }()
		}
	}()
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
	direct := dbtest.PostgreSQL(t) // the proxy speaks to its Unix socket
	cfg := direct.Pool.Config().ConnConfig
	proxy := startOutage(t, fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port))
	host, port, _ := net.SplitHostPort(proxy.addr)
	viaProxy, err := database.Open(context.Background(),
		fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable connect_timeout=2", host, port, cfg.User, cfg.Database), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { go viaProxy.Close() })
	e := newEnvOn(t, viaProxy)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")

	proxy.down()
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
	res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00")))
	if err != nil {
		t.Fatalf("the write retried after the outage: %v", err)
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
