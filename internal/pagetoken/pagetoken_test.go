package pagetoken

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestATokenOpensOnlyForItsScope(t *testing.T) {
	cursor := []byte("0123456789ab")
	token := Seal(cursor, "member:1")
	for _, tc := range []struct {
		name, token, scope string
		want               []byte
		err                error
	}{
		{"its own scope", token, "member:1", cursor, nil},
		{"another scope", token, "member:2", nil, ErrOtherScope},
		{"a bare cursor, issued before sealing", base64.RawURLEncoding.EncodeToString(cursor), "member:2", cursor, nil},
		{"not base64", "!!", "member:1", nil, ErrMalformed},
		{"the wrong length", token + "AA", "member:1", nil, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Open(tc.token, tc.scope, len(cursor))
			if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) {
				t.Fatalf("Open = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
