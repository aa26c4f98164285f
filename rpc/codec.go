package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The codecs are Connect's own, except that a write refuses fields it does
// not know: a misspelt "bookedForSomeoneElse" must not be dropped in
// silence while the stay earns full points. A write is a request with an
// idempotency_key, as every mutating request has. Reads stay lenient, so
// that a client built on a newer contract can still read, but for
// finance's reports: a misspelt "asof" or "groupby" would report another
// period or another grouping than the one asked for, and be filed.
//
// The refusal is INVALID_ARGUMENT ("unmarshal message: unknown field ...",
// Connect's wording around ours): Connect decodes a request before any
// handler or interceptor runs, so the codec's error is the answer.

// codecs are the handler options that install the strict codecs.
func codecs() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithCodec(strictJSON{name: "json"}),
		connect.WithCodec(strictJSON{name: "json; charset=utf-8"}),
		connect.WithCodec(strictProto{}),
	}
}

// isWrite reports whether messages of this type are writes: they carry an
// idempotency_key, or are a batch of such writes (RecordStays' stays),
// decoded as strictly as each of them alone.
func isWrite(m protoreflect.Message) bool {
	d := m.Descriptor()
	if w, ok := writes.Load(d.FullName()); ok {
		return w.(bool)
	}
	w := d.Fields().ByName("idempotency_key") != nil
	for i := 0; i < d.Fields().Len() && !w; i++ {
		fd := d.Fields().Get(i)
		w = fd.IsList() && fd.Message() != nil && fd.Message().Fields().ByName("idempotency_key") != nil
	}
	writes.Store(d.FullName(), w)
	return w
}

var writes sync.Map // protoreflect.FullName -> bool

// financeContract is the file of finance's requests, which refuse unknown
// fields as writes do.
const financeContract = "loyalty/v1/finance_service.proto"

// refusesUnknown reports whether a request of m's type refuses a field it
// does not know: a write, or a finance report's request.
func refusesUnknown(m protoreflect.Message) bool {
	return isWrite(m) || m.Descriptor().ParentFile().Path() == financeContract
}

type strictJSON struct{ name string }

func (c strictJSON) Name() string { return c.name }

func (strictJSON) Marshal(message any) ([]byte, error) {
	m, ok := message.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", message)
	}
	return protojson.MarshalOptions{}.Marshal(m)
}

func (strictJSON) MarshalStable(message any) ([]byte, error) {
	b, err := strictJSON{}.Marshal(message)
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

func (strictJSON) IsBinary() bool { return false }

// unknownJSONField finds the field's name in protojson's error.
var unknownJSONField = regexp.MustCompile(`unknown field "([^"]*)"`)

func (strictJSON) Unmarshal(data []byte, message any) error {
	m, ok := message.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", message)
	}
	if len(data) == 0 {
		return errors.New("an empty body is not a JSON object")
	}
	write, d := refusesUnknown(m.ProtoReflect()), m.ProtoReflect().Descriptor()
	err := protojson.UnmarshalOptions{DiscardUnknown: !write}.Unmarshal(data, m)
	if err == nil {
		if !write && hasEnums(d) {
			// Lenient, protojson dropped an enum name it does not know as
			// it drops an unknown field: a misspelt filter would list all.
			if p := findJSONProblem(d, data, false, false); p != nil {
				return p
			}
		}
		return nil
	}
	// Where it is, as the client spelled it.
	if p := findJSONProblem(d, data, write, true); p != nil {
		return p
	}
	if f := unknownJSONField.FindStringSubmatch(err.Error()); write && f != nil {
		return fmt.Errorf("unknown field %q: %s has no such field, and this call refuses what it does not know (check the spelling)",
			clip(f[1]), m.ProtoReflect().Descriptor().Name())
	}
	return fmt.Errorf("not %s: %w", withArticle(string(m.ProtoReflect().Descriptor().Name())), err)
}

type strictProto struct{}

func (strictProto) Name() string { return "proto" }

func (strictProto) Marshal(message any) ([]byte, error) {
	m, ok := message.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", message)
	}
	return proto.Marshal(m)
}

func (strictProto) MarshalAppend(dst []byte, message any) ([]byte, error) {
	m, ok := message.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", message)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

func (strictProto) MarshalStable(message any) ([]byte, error) {
	m, ok := message.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", message)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

func (strictProto) IsBinary() bool { return true }

func (strictProto) Unmarshal(data []byte, message any) error {
	m, ok := message.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", message)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("not %s: %w", withArticle(string(m.ProtoReflect().Descriptor().Name())), err)
	}
	if r := m.ProtoReflect(); refusesUnknown(r) {
		if path := unknownField(r, ""); path != "" {
			return fmt.Errorf("unknown field %s: this call refuses fields it does not know (is the client's contract newer than the server's?)", path)
		}
	}
	return nil
}

// unknownField names the first field number in m (or a message in it)
// that its type does not define, as "number 12 in nights[0]"; "" if none.
func unknownField(m protoreflect.Message, at string) string {
	if unknown := m.GetUnknown(); len(unknown) > 0 {
		number, _, _ := protowire.ConsumeTag(unknown)
		where := string(m.Descriptor().Name())
		if at != "" {
			where = at
		}
		return fmt.Sprintf("number %d in %s", number, where)
	}
	var found string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		name := fd.JSONName()
		if at != "" {
			name = at + "." + name
		}
		switch {
		case fd.IsList():
			for i := range v.List().Len() {
				if found = unknownField(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", name, i)); found != "" {
					return false
				}
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Message() != nil {
					found = unknownField(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()))
				}
				return found == ""
			})
		default:
			found = unknownField(v.Message(), name)
		}
		return found == ""
	})
	return found
}

// withArticle is name after "a" or "an", as it is read aloud.
func withArticle(name string) string {
	if name != "" && strings.ContainsRune("AEIOUaeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}
