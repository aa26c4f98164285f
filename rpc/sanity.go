package rpc

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Bounds every request's fields keep, whatever the procedure: checked once
// here, by type, before any handler reads them, so that no text the
// database refuses (a NUL), no enum value the contract does not define and
// no timestamp a reader cannot show back ever gets in.
var (
	// earliestInstant and latestInstant bound every timestamp a request
	// carries; a field's own rule (in the future, within two years) is
	// its handler's.
	earliestInstant = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	latestInstant   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// saneRequest refuses a request with a string holding a NUL or another
// control character (tab, line feed and carriage return excepted) or
// invalid UTF-8, an enum number the contract does not define, or a
// timestamp outside [2000, 2100): INVALID_ARGUMENT naming the field. It
// runs on every call, so it allocates nothing unless it refuses: a field's
// path is put together on the way back from the field refused.
func saneRequest(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if m, ok := req.Any().(proto.Message); ok {
			if p := saneMessage(m.ProtoReflect()); p != nil {
				return nil, p.err()
			}
		}
		return next(ctx, req)
	}
}

const timestampName = "google.protobuf.Timestamp"

// insane is a field refused: what is wrong with it, and its path, innermost
// segment first (a field name, or an index or key in brackets).
type insane struct {
	path    []string
	problem string
}

func refuse(format string, args ...any) *insane {
	return &insane{problem: fmt.Sprintf(format, args...)}
}

// in puts the segment in front of the path.
func (p *insane) in(segment string) *insane {
	p.path = append(p.path, segment)
	return p
}

func (p *insane) err() error {
	var b strings.Builder
	for i := len(p.path) - 1; i >= 0; i-- {
		if b.Len() > 0 && !strings.HasPrefix(p.path[i], "[") {
			b.WriteByte('.')
		}
		b.WriteString(p.path[i])
	}
	return badField(b.String(), "%s", p.problem)
}

func saneMessage(m protoreflect.Message) *insane {
	var bad *insane
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			list := v.List()
			for i := range list.Len() {
				if bad = saneValue(fd, list.Get(i)); bad != nil {
					bad.in(fmt.Sprintf("[%d]", i))
					break
				}
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if s, ok := k.Interface().(string); ok {
					bad = saneText(s)
				}
				if bad == nil {
					bad = saneValue(fd.MapValue(), mv)
				}
				if bad != nil {
					bad.in(fmt.Sprintf("[%v]", k.Interface()))
				}
				return bad == nil
			})
		default:
			bad = saneValue(fd, v)
		}
		if bad != nil {
			bad.in(string(fd.Name()))
		}
		return bad == nil
	})
	return bad
}

func saneValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) *insane {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return saneText(v.String())
	case protoreflect.EnumKind:
		if fd.Enum().Values().ByNumber(v.Enum()) == nil {
			var names []string
			values := fd.Enum().Values()
			for i := 1; i < values.Len(); i++ { // 0 is UNSPECIFIED
				names = append(names, string(values.Get(i).Name()))
			}
			return refuse("is %d, not a value of %s; want one of %s", v.Enum(), fd.Enum().Name(), strings.Join(names, ", "))
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := v.Message()
		if m.Descriptor().FullName() == timestampName {
			return saneInstant(m)
		}
		return saneMessage(m)
	}
	return nil
}

// saneText refuses control characters but tab, line feed and carriage
// return, and invalid UTF-8.
func saneText(s string) *insane {
	if !utf8.ValidString(s) {
		return refuse("is not valid UTF-8")
	}
	for i, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return refuse("has a control character (U+%04X) at byte %d", r, i)
		}
	}
	return nil
}

func saneInstant(m protoreflect.Message) *insane {
	fields := m.Descriptor().Fields()
	seconds := m.Get(fields.ByName("seconds")).Int()
	nanos := m.Get(fields.ByName("nanos")).Int()
	if nanos < 0 || nanos > 999_999_999 {
		return refuse("has nanos %d, out of 0-999999999", nanos)
	}
	t := time.Unix(seconds, nanos).UTC()
	if t.Before(earliestInstant) || !t.Before(latestInstant) {
		return refuse("is %s, out of %s to %s", t.Format(time.RFC3339), earliestInstant.Format(time.DateOnly), latestInstant.Format(time.DateOnly))
	}
	return nil
}
