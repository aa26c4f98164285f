package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestWhatMeansTheDatabaseIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"the server is shutting down (57P01)", &pgconn.PgError{Code: "57P01"}, true},
		{"the server is starting up (57P03)", &pgconn.PgError{Code: "57P03"}, true},
		{"a connection failure (08006)", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections (53300)", &pgconn.PgError{Code: "53300"}, true},
		{"an ambiguous result (40003)", &pgconn.PgError{Code: "40003"}, true},
		{"a read-only database: a standby, a failover (25006)", &pgconn.PgError{Code: "25006"}, true},
		{"a refused connection", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"a connection closed", fmt.Errorf("read: %w", pgconn.ErrConnClosed), true},
		{"a connection cut mid-answer", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"a commit whose outcome is unknown", &ambiguousCommitError{io.EOF}, true},
		{"every attempt failed to reach it", fmt.Errorf("%w: 12 attempts", ErrUnavailable), true},
		{"a serialization failure is contention", &pgconn.PgError{Code: "40001"}, false},
		{"a unique violation is an answer", &pgconn.PgError{Code: "23505"}, false},
		{"the caller's deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{"the caller gave up", context.Canceled, false},
		{"a bug", errors.New("nil map"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Unavailable(tc.err); got != tc.want {
				t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
