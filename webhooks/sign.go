package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// secretPrefix marks a webhook signing secret, as Standard Webhooks
// spells it.
const secretPrefix = "whsec_"

// Sign is the Standard Webhooks signature of one attempt: "v1," and the
// base64 of the HMAC-SHA256 of "<msgID>.<unix seconds>.<body>", keyed with
// the bytes the secret's base64 after "whsec_" encodes. A secret that is
// not base64 there keys the HMAC with its own bytes (no secret of this
// package is such).
func Sign(secret string, msgID string, timestamp time.Time, body []byte) string {
	encoded := strings.TrimPrefix(secret, secretPrefix)
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		key = []byte(encoded)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
