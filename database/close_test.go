package database_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
)

// TestClosingAPoolOfAHungDatabaseEndsInTime: a database that stops
// answering (a frozen server, a partitioned network) holds a pool's Close
// as long as a query waits on it (Close waits for every connection to
// come back) and then up to 15 s per connection; CloseWithin gives up
// after its grace and says so. A database that answers closes at once.
func TestClosingAPoolOfAHungDatabaseEndsInTime(t *testing.T) {
	direct := dbtest.PostgreSQL(t)
	cfg := direct.Pool.Config().ConnConfig
	target := fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port)
	open := func(t *testing.T, frozen *atomic.Bool) *database.DB {
		t.Helper()
		addr := hangingProxy(t, target, frozen)
		host, port, _ := net.SplitHostPort(addr)
		db, err := database.Open(context.Background(),
			fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable", host, port, cfg.User, cfg.Database), database.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// Idle connections for Close to close.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := db.Pool.Exec(context.Background(), `SELECT pg_sleep(0.05)`); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return db
	}

	var answering, hung atomic.Bool
	if err := open(t, &answering).CloseWithin(time.Second); err != nil {
		t.Errorf("a database that answers: %v", err)
	}
	db := open(t, &hung)
	hung.Store(true)
	// A query without a deadline (a job's) holds its connection: Close
	// waits for every connection to come back.
	stuck := make(chan struct{})
	go func() {
		close(stuck)
		_, _ = db.Pool.Exec(context.Background(), `SELECT 1`)
	}()
	<-stuck
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	err := db.CloseWithin(300 * time.Millisecond)
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Errorf("a hung database: %v after %s; want an error within the grace", err, took)
	}
}

// hangingProxy forwards TCP connections to the Unix socket target until
// frozen is set; from then on it passes nothing either way and closes
// nothing, as a frozen server does.
func hangingProxy(t *testing.T, target string, frozen *atomic.Bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if frozen.Load() {
				<-done // hold both ends open, silent
				return
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					dst.Close()
				}
				return
			}
		}
	}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("unix", target)
			if err != nil {
				client.Close()
				continue
			}
			go pipe(server, client)
			go pipe(client, server)
			go func() { <-done; client.Close(); server.Close() }()
		}
	}()
	return ln.Addr().String()
}
