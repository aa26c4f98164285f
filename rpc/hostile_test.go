package rpc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/loyalty-ledger/loyalty/rpc"
)

// hostile is a value no request should get in with, as JSON; named says
// the refusal must name its field (the value is refused for itself, before
// any other check of the request).
type hostile struct {
	value any
	named bool
}

// hostileValues are the hostile values of a field's type.
func hostileValues(fd protoreflect.FieldDescriptor) []hostile {
	switch fd.Kind() {
	case protoreflect.StringKind:
		values := []hostile{{"a\u0000b", true}, {"bell\u0007", true}, {json.RawMessage(`"\ud800"`), false}, {strings.Repeat("x", 70<<10), false}}
		name := string(fd.Name())
		if strings.HasSuffix(name, "_date") || strings.HasSuffix(name, "_on") {
			values = append(values, hostile{"2026-02-30", false}, hostile{"0001-01-01", false})
		}
		if name == "amount" || strings.HasSuffix(name, "_rate") || strings.HasSuffix(name, "_per_point") || strings.HasSuffix(name, "_unit") {
			values = append(values, hostile{"-1", false}, hostile{"0", false}, hostile{"1e400", false}, hostile{"99999999999999999999.999", false})
		}
		return values
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return []hostile{{json.Number("2147483648"), false}, {json.Number("-2147483648"), false}, {json.Number("-1"), false}}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return []hostile{{"9223372036854775808", false}, {"-9223372036854775808", false}, {"-1", false}}
	case protoreflect.EnumKind:
		return []hostile{{99, true}, {"NOT_A_VALUE", false}}
	case protoreflect.MessageKind:
		if fd.Message().FullName() == "google.protobuf.Timestamp" {
			return []hostile{{"0001-01-01T00:00:00Z", true}, {"9999-12-31T23:59:59Z", true}, {"2026-02-30T00:00:00Z", false}}
		}
	}
	return nil
}

// hostileBody is a request body with one hostile value, at path (as the
// refusal names it).
type hostileBody struct {
	body  map[string]any
	path  string
	named bool
}

// hostileBodies are request bodies of a message type with one hostile
// value each, in its fields and, one level down, in its messages' fields.
func hostileBodies(md protoreflect.MessageDescriptor, depth int) []hostileBody {
	var out []hostileBody
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		var values []hostileBody
		switch {
		case fd.IsMap():
			values = []hostileBody{{body: map[string]any{"k\u0000": "v"}, path: "[k\u0000]"}}
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != "google.protobuf.Timestamp":
			if depth > 0 {
				for _, inner := range hostileBodies(fd.Message(), depth-1) {
					values = append(values, hostileBody{body: inner.body, path: "." + inner.path, named: inner.named})
				}
			}
		default:
			for _, h := range hostileValues(fd) {
				values = append(values, hostileBody{body: map[string]any{"": h.value}, named: h.named})
			}
		}
		for _, v := range values {
			var value any = v.body
			if inner, ok := v.body[""]; ok {
				value = inner
			}
			path := fd.JSONName()
			if fd.IsList() {
				value, path = []any{value}, path+"[0]"
			}
			if !strings.HasPrefix(v.path, "[") || fd.IsMap() {
				path += v.path
			}
			out = append(out, hostileBody{body: map[string]any{fd.JSONName(): value}, path: path, named: v.named})
		}
	}
	return out
}

// TestHostileInputIsRefusedCleanly: every procedure of every service, every
// field of its request (and of the messages in it), a hostile value of the
// field's type over Connect JSON: NUL and control characters, a lone
// surrogate, 70 KiB of text, impossible dates, numbers past their type,
// unknown enum values, timestamps at 0001 and 9999. The answer is one a
// client can act on (never INTERNAL or UNKNOWN), a write is refused, and
// nothing is written. A new procedure or field is covered as it is added.
func TestHostileInputIsRefusedCleanly(t *testing.T) {
	e := newEnv(t)
	e.createPartner(t, "ALPHA", "0.0085", "0.0061", nil)
	partnerKey, _ := e.partnerKey(t, "ALPHA", "alpha-pms")
	// Admin keys may call every service but the partners' own.
	keyFor := map[string]string{"loyalty.v1.AllianceService": partnerKey}
	counts := func() string {
		var b strings.Builder
		for _, table := range []string{"transactions", "members", "holds", "api_keys", "partners", "partner_rates",
			"programme_versions", "properties", "booking_outcomes", "tier_changes", "finance_point_values", "webhook_endpoints", "webhook_deliveries"} {
			var n int
			if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s=%d ", table, n)
		}
		return b.String()
	}
	before := counts()
	calls := 0
	for _, service := range rpc.Services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		key := keyFor[service]
		if key == "" {
			key = e.adminKey
		}
		for i := range methods.Len() {
			m := methods.Get(i)
			write := m.Input().Fields().ByName("idempotency_key") != nil
			for _, h := range hostileBodies(m.Input(), 1) {
				body := h.body
				if _, hostileKey := body["idempotencyKey"]; write && !hostileKey {
					body["idempotencyKey"] = fmt.Sprint("hostile-", calls)
				}
				raw, err := json.Marshal(body)
				if err != nil {
					t.Fatal(err)
				}
				// A stream's request is one enveloped message; its error
				// comes in the envelope that ends the stream.
				payload, contentType := raw, "application/json"
				if m.IsStreamingServer() {
					payload, contentType = append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(raw))), raw...), "application/connect+json"
				}
				ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.server.URL+"/"+service+"/"+string(m.Name()), bytes.NewReader(payload))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", contentType)
				res, err := e.server.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				answer, _ := io.ReadAll(res.Body)
				res.Body.Close()
				cancel()
				if m.IsStreamingServer() {
					answer = streamError(answer)
				}
				calls++
				var wireErr struct {
					Code    string
					Message string
				}
				_ = json.Unmarshal(answer, &wireErr)
				switch {
				case h.named && !strings.HasPrefix(wireErr.Message, h.path+": "):
					t.Errorf("%s %s: %d %s; want a refusal naming %s", m.FullName(), clipBody(raw), res.StatusCode, clipBody(answer), h.path)
				case wireErr.Code == "internal" || wireErr.Code == "unknown" || res.StatusCode >= 500:
					t.Errorf("%s %s: %d %s", m.FullName(), clipBody(raw), res.StatusCode, clipBody(answer))
				case write && res.StatusCode == http.StatusOK:
					t.Errorf("%s accepted %s: %s", m.FullName(), clipBody(raw), clipBody(answer))
				}
			}
		}
	}
	if after := counts(); after != before {
		t.Errorf("refused requests wrote:\nbefore %s\nafter  %s", before, after)
	}
	if calls < 300 {
		t.Errorf("only %d hostile calls: the contract's fields were not all reached", calls)
	}
	t.Logf("%d hostile requests, every one refused cleanly", calls)
}

// streamError is the error of the envelope that ends a Connect stream
// (flag 0x02, {"error": {...}}); nil if it has none.
func streamError(body []byte) []byte {
	for len(body) >= 5 {
		flags, size := body[0], binary.BigEndian.Uint32(body[1:5])
		if uint32(len(body)-5) < size {
			return nil
		}
		message := body[5 : 5+size]
		body = body[5+size:]
		if flags&0x02 != 0 {
			var end struct{ Error json.RawMessage }
			if json.Unmarshal(message, &end) != nil {
				return nil
			}
			return end.Error
		}
	}
	return nil
}

func clipBody(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
