// Package pgfault is a TCP proxy to a PostgreSQL server that, when armed,
// makes the outcome of the next COMMIT unknown to the client, the two ways
// production does: the connection dies after the server committed, or
// CockroachDB answers SQLSTATE 40003 (result is ambiguous). Tests use it to
// prove that a write whose commit outcome is unknown is retried through its
// idempotency claim and recorded once.
package pgfault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
)

// Fault is what an armed proxy does to the next COMMIT.
type Fault int32

const (
	// DropAnswer forwards the COMMIT, lets the server commit and closes
	// the client's connection without passing the answer back.
	DropAnswer Fault = iota + 1
	// AmbiguousResult forwards the COMMIT, lets the server commit and
	// answers the client with SQLSTATE 40003 instead of the server's
	// answer, as CockroachDB does when it cannot tell whether a commit
	// applied. The connection stays usable.
	AmbiguousResult
)

func (f Fault) String() string {
	switch f {
	case DropAnswer:
		return "connection lost after COMMIT"
	case AmbiguousResult:
		return "COMMIT answered 40003 result is ambiguous"
	}
	return "no fault"
}

// commitGrace is how long the proxy lets the server work on a COMMIT
// before it interferes: long enough for a local server to commit.
const commitGrace = 200 * time.Millisecond

// Proxy listens on 127.0.0.1:Port and forwards to a PostgreSQL server.
type Proxy struct {
	Port     int
	armed    atomic.Int32
	injected atomic.Int32
}

// Start starts a proxy to the server listening on the Unix socket at
// socketPath; it stops when the test ends.
func Start(tb testing.TB, socketPath string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	p := &Proxy{Port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("unix", socketPath)
			if err != nil {
				client.Close()
				continue
			}
			go p.serve(client, server)
		}
	}()
	return p
}

// Open opens a second pool on db's database (a PostgreSQL that listens on
// a Unix socket, as dbtest's does) through a new proxy.
func Open(tb testing.TB, db *database.DB) (*database.DB, *Proxy) {
	tb.Helper()
	cfg := db.Pool.Config().ConnConfig
	p := Start(tb, fmt.Sprintf("%s/.s.PGSQL.%d", cfg.Host, cfg.Port))
	via, err := database.Open(context.Background(),
		fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", p.Port, cfg.User, cfg.Database),
		database.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	// Closing a pool whose connection died mid-commit waits 15 s for that
	// connection's cleanup (pgxpool's destructor timeout): not the test's.
	tb.Cleanup(func() { go via.Close() })
	return via, p
}

// Arm makes the proxy apply f to the next COMMIT any client sends.
func (p *Proxy) Arm(f Fault) { p.armed.Store(int32(f)) }

// Injected is how many faults the proxy has applied.
func (p *Proxy) Injected() int { return int(p.injected.Load()) }

func (p *Proxy) serve(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	// swallow is set while the server's answer to a COMMIT is replaced by
	// the injected one; the server's answer ends at its ReadyForQuery.
	var swallow, blackout atomic.Bool
	go func() {
		r := bufio.NewReaderSize(server, 64<<10)
		for {
			msg, err := readMessage(r)
			if err != nil {
				return
			}
			switch {
			case blackout.Load():
				continue
			case swallow.Load():
				if msg[0] == 'Z' {
					swallow.Store(false)
					if _, err := client.Write(ambiguousAnswer()); err != nil {
						return
					}
				}
				continue
			}
			if _, err := client.Write(msg); err != nil {
				return
			}
		}
	}()
	r := bufio.NewReaderSize(client, 64<<10)
	startup, err := readStartup(r)
	if err != nil {
		return
	}
	if _, err := server.Write(startup); err != nil {
		return
	}
	// A COMMIT runs when a simple query holding it arrives, or at the Sync
	// after a Bind of a prepared statement holding it: pgx prepares a
	// batch's statements in one exchange and executes them in the next.
	commits := map[string]bool{} // prepared statement name: is a COMMIT
	pendingCommit := false
	for {
		msg, err := readMessage(r)
		if err != nil {
			return
		}
		runsCommit := false
		switch msg[0] {
		case 'Q':
			runsCommit = isCommit(cString(msg[5:]))
		case 'P':
			name := cString(msg[5:])
			commits[name] = isCommit(cString(msg[5+len(name)+1:]))
		case 'B':
			portal := cString(msg[5:])
			pendingCommit = pendingCommit || commits[cString(msg[5+len(portal)+1:])]
		case 'S':
			runsCommit, pendingCommit = pendingCommit, false
		}
		if runsCommit {
			switch f := Fault(p.armed.Load()); {
			case f == DropAnswer && p.armed.CompareAndSwap(int32(f), 0):
				blackout.Store(true)
				_, _ = server.Write(msg)
				time.Sleep(commitGrace) // let the server commit
				p.injected.Add(1)
				return
			case f == AmbiguousResult && p.armed.CompareAndSwap(int32(f), 0):
				swallow.Store(true)
				p.injected.Add(1)
			}
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

func isCommit(sql string) bool {
	return strings.EqualFold(strings.TrimRight(strings.TrimSpace(sql), ";"), "commit")
}

// cString returns the NUL-terminated string at the start of b.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// readStartup reads the client's first message, which has no type byte.
func readStartup(r *bufio.Reader) ([]byte, error) {
	header := make([]byte, 4)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, err
	}
	msg := make([]byte, int(binary.BigEndian.Uint32(header)))
	copy(msg, header)
	_, err := io.ReadFull(r, msg[4:])
	return msg, err
}

// readMessage reads one message of the server's: a type byte and a
// length that counts itself.
func readMessage(r *bufio.Reader) ([]byte, error) {
	header := make([]byte, 5)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, err
	}
	length := int(binary.BigEndian.Uint32(header[1:]))
	msg := make([]byte, 1+length)
	copy(msg, header)
	if _, err := io.ReadFull(r, msg[5:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// ambiguousAnswer is an ErrorResponse with SQLSTATE 40003 followed by
// ReadyForQuery (idle): what the client reads instead of the commit's
// answer.
func ambiguousAnswer() []byte {
	var fields bytes.Buffer
	for _, f := range [][2]string{
		{"S", "ERROR"}, {"V", "ERROR"}, {"C", "40003"},
		{"M", "result is ambiguous (injected by pgfault after the server committed)"},
	} {
		fields.WriteString(f[0])
		fields.WriteString(f[1])
		fields.WriteByte(0)
	}
	fields.WriteByte(0)
	var out bytes.Buffer
	out.WriteByte('E')
	_ = binary.Write(&out, binary.BigEndian, uint32(4+fields.Len()))
	out.Write(fields.Bytes())
	out.Write([]byte{'Z', 0, 0, 0, 5, 'I'})
	return out.Bytes()
}
