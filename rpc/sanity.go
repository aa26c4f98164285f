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
// timestamp outside [2000, 2100): INVALID_ARGUMENT naming the field.
func saneRequest(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if m, ok := req.Any().(proto.Message); ok {
			if err := saneMessage(m.ProtoReflect(), ""); err != nil {
				return nil, err
			}
		}
		return next(ctx, req)
	}
}

const timestampName = "google.protobuf.Timestamp"

func saneMessage(m protoreflect.Message, at string) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := string(fd.Name())
		if at != "" {
			path = at + "." + path
		}
		switch {
		case fd.IsList():
			list := v.List()
			for i := range list.Len() {
				if err = saneValue(fd, list.Get(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return false
				}
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				where := fmt.Sprintf("%s[%v]", path, k.Interface())
				if s, ok := k.Interface().(string); ok {
					if err = saneText(s, where); err != nil {
						return false
					}
				}
				err = saneValue(fd.MapValue(), mv, where)
				return err == nil
			})
		default:
			err = saneValue(fd, v, path)
		}
		return err == nil
	})
	return err
}

func saneValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return saneText(v.String(), path)
	case protoreflect.EnumKind:
		if fd.Enum().Values().ByNumber(v.Enum()) == nil {
			var names []string
			values := fd.Enum().Values()
			for i := 1; i < values.Len(); i++ { // 0 is UNSPECIFIED
				names = append(names, string(values.Get(i).Name()))
			}
			return badField(path, "is %d, not a value of %s; want one of %s", v.Enum(), fd.Enum().Name(), strings.Join(names, ", "))
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := v.Message()
		if m.Descriptor().FullName() == timestampName {
			return saneInstant(m, path)
		}
		return saneMessage(m, path)
	}
	return nil
}

// saneText refuses control characters but tab, line feed and carriage
// return, and invalid UTF-8.
func saneText(s, path string) error {
	if !utf8.ValidString(s) {
		return badField(path, "is not valid UTF-8")
	}
	for i, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return badField(path, "has a control character (U+%04X) at byte %d", r, i)
		}
	}
	return nil
}

func saneInstant(m protoreflect.Message, path string) error {
	fields := m.Descriptor().Fields()
	seconds := m.Get(fields.ByName("seconds")).Int()
	nanos := m.Get(fields.ByName("nanos")).Int()
	if nanos < 0 || nanos > 999_999_999 {
		return badField(path, "has nanos %d, out of 0-999999999", nanos)
	}
	t := time.Unix(seconds, nanos).UTC()
	if t.Before(earliestInstant) || !t.Before(latestInstant) {
		return badField(path, "is %s, out of %s to %s", t.Format(time.RFC3339), earliestInstant.Format(time.DateOnly), latestInstant.Format(time.DateOnly))
	}
	return nil
}
