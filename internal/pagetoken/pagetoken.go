// Package pagetoken seals a page's cursor to what it pages (an account's
// statement, a member's history): a token given with another account or
// member is refused, rather than read as a position in it, which would
// skip entries in silence.
package pagetoken

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// digestLen is how much of the scope's SHA-256 a token carries.
const digestLen = 8

var (
	// ErrMalformed: not a token of this cursor's length.
	ErrMalformed = errors.New("not a token this service issued")
	// ErrOtherScope: a token of another account's or member's pages.
	ErrOtherScope = errors.New("a token of another account's or member's pages")
)

func digest(scope string) []byte {
	sum := sha256.Sum256([]byte(scope))
	return sum[:digestLen]
}

// Seal is the token of cursor, the encoded position of a page of scope.
func Seal(cursor []byte, scope string) string {
	return base64.RawURLEncoding.EncodeToString(append(cursor[:len(cursor):len(cursor)], digest(scope)...))
}

// Open returns the cursor, cursorLen bytes, that token holds for scope. A
// token of the bare cursor, as issued before tokens were sealed, is taken
// as it is.
func Open(token, scope string, cursorLen int) ([]byte, error) {
	buf, err := base64.RawURLEncoding.DecodeString(token)
	switch {
	case err != nil || (len(buf) != cursorLen && len(buf) != cursorLen+digestLen):
		return nil, ErrMalformed
	case len(buf) > cursorLen && !bytes.Equal(buf[cursorLen:], digest(scope)):
		return nil, ErrOtherScope
	}
	return buf[:cursorLen], nil
}
