package database

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnavailable: the database could not be reached, or lost the
// connection, on every attempt.
var ErrUnavailable = errors.New("the database is unavailable")

// Unavailable reports whether err means that the database could not be
// reached or the connection was lost, or that a commit's outcome is
// unknown: nothing the request did is known to be written, and the request
// is safe to retry with the same idempotency key. A restart of the server
// looks like this: connection refused, SQLSTATE class 08, 57P01
// (terminating connection), 57P02, 57P03 (starting up); so do 53300 (too
// many connections), 40003 (a commit whose result is ambiguous) and 25006
// (a read-only transaction: connected to a standby during a failover, or
// to a database made read-only), which nothing wrote.
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // the caller's own deadline: not the database's doing
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300", "40003", "25006":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	var amb *ambiguousCommitError
	return errors.Is(err, ErrUnavailable) || errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.As(err, &amb) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}
