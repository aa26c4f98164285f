package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// jsonProblem is what protojson would refuse in a request, found where it
// is: protojson's own errors name a field without its path ("unknown
// field "currency"", in which message?) or name an enum field by its
// proto name, and its lenient mode, which reads use, drops an enum value
// it does not know as silently as an unknown field, so that a misspelt
// filter ("DEAD") would list everything.
type jsonProblem struct {
	// path is the value's path as the client spelled it
	// ("nights[0].roomCharge.currency").
	path string
	// message is the name of the message the field was looked up in.
	message protoreflect.Name
	// enum is the enum a value is not a name of; nil for an unknown field.
	enum  protoreflect.EnumDescriptor
	value string
	// refused is protojson's complaint about a value of the wrong form
	// (a timestamp without its zone, a number in quotes that is none).
	refused string
}

func (p *jsonProblem) Error() string {
	if p.refused != "" {
		return fmt.Sprintf("%s: %s", clip(p.path), p.refused)
	}
	if p.enum == nil {
		return fmt.Sprintf("unknown field %q: %s has no such field, and this call refuses what it does not know (check the spelling)",
			clip(p.path), p.message)
	}
	values := p.enum.Values()
	names := make([]string, 0, values.Len())
	for i := range values.Len() {
		names = append(names, string(values.Get(i).Name()))
	}
	return fmt.Sprintf("%s: %q is not a value of %s (%s)", clip(p.path), clip(p.value), p.enum.Name(), strings.Join(names, ", "))
}

// findJSONProblem walks the JSON document data as a message of type d
// and returns the first value protojson would refuse: a field d does not
// have (when unknownFields), an enum value given by a name its enum does
// not have, or (when values: protojson refused the document) a value of
// the wrong form, such as a timestamp without its zone. Documents that
// are not JSON are left to protojson: nil.
func findJSONProblem(d protoreflect.MessageDescriptor, data []byte, unknownFields, values bool) *jsonProblem {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil
	}
	return walkMessage(d, doc, "", walk{unknownFields: unknownFields, values: values})
}

// walk is what a walk looks for besides enum names.
type walk struct{ unknownFields, values bool }

// protojsonPosition is the position protojson puts before its complaint,
// meaningless once the value is named by its path.
// (protojson writes a no-break space after "proto:", so that its texts
// are not matched exactly; this only drops them.)
var protojsonPosition = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)

// refusedValue is protojson's complaint about the value of field name of
// a message of type d, read alone; "" when it takes it.
func refusedValue(d protoreflect.MessageDescriptor, name string, value any) string {
	one, err := json.Marshal(map[string]any{name: value})
	if err != nil {
		return ""
	}
	err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(one, dynamicpb.NewMessage(d))
	if err == nil {
		return ""
	}
	complaint := protojsonPosition.ReplaceAllString(err.Error(), "")
	if strings.Contains(complaint, "google.protobuf.Timestamp") {
		complaint += " (an RFC 3339 time with its zone, such as \"2026-12-01T00:00:00Z\" or \"2026-12-01T08:00:00+08:00\")"
	}
	return complaint
}

func walkMessage(d protoreflect.MessageDescriptor, v any, path string, w walk) *jsonProblem {
	object, ok := v.(map[string]any)
	if !ok || strings.HasPrefix(string(d.FullName()), "google.protobuf.") {
		return nil // a well-known type has a JSON form of its own
	}
	fields := d.Fields()
	for _, name := range sortedKeys(object) {
		fd := fields.ByJSONName(name)
		if fd == nil {
			fd = fields.ByTextName(name)
		}
		at := join(path, name)
		if fd == nil {
			if w.unknownFields {
				return &jsonProblem{path: at, message: d.Name()}
			}
			continue
		}
		value := object[name]
		switch {
		case fd.IsMap():
			entries, _ := value.(map[string]any)
			for _, key := range sortedKeys(entries) {
				if p := walkValue(fd.MapValue(), entries[key], fmt.Sprintf("%s[%q]", at, key), w); p != nil {
					return p
				}
			}
		case fd.IsList():
			items, _ := value.([]any)
			for i, item := range items {
				if p := walkValue(fd, item, fmt.Sprintf("%s[%d]", at, i), w); p != nil {
					return p
				}
			}
		default:
			if p := walkValue(fd, value, at, w); p != nil {
				return p
			}
		}
		// Deeper problems first: they name the path more precisely.
		if w.values {
			if refused := refusedValue(d, name, value); refused != "" {
				return &jsonProblem{path: at, refused: refused}
			}
		}
	}
	return nil
}

// walkValue checks one value of field fd (an element, for a list or map).
func walkValue(fd protoreflect.FieldDescriptor, v any, path string, w walk) *jsonProblem {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return walkMessage(fd.Message(), v, path, w)
	case protoreflect.EnumKind:
		name, ok := v.(string)
		if ok && fd.Enum().FullName() != "google.protobuf.NullValue" && fd.Enum().Values().ByName(protoreflect.Name(name)) == nil {
			return &jsonProblem{path: path, enum: fd.Enum(), value: name}
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// sortedKeys orders a JSON object's keys, so that the problem reported is
// the same whatever order the client wrote them in.
func sortedKeys(object map[string]any) []string {
	keys := make([]string, 0, len(object))
	for k := range object {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// hasEnums reports whether messages of type d hold an enum field, at any
// depth: only their reads need looking for enum names protojson dropped.
func hasEnums(d protoreflect.MessageDescriptor) bool {
	if v, ok := enumHolders.Load(d.FullName()); ok {
		return v.(bool)
	}
	seen := map[protoreflect.FullName]bool{}
	var walk func(d protoreflect.MessageDescriptor) bool
	walk = func(d protoreflect.MessageDescriptor) bool {
		if d == nil || seen[d.FullName()] {
			return false
		}
		seen[d.FullName()] = true
		for i := range d.Fields().Len() {
			fd := d.Fields().Get(i)
			if fd.Kind() == protoreflect.EnumKind || (fd.IsMap() && fd.MapValue().Kind() == protoreflect.EnumKind) {
				return true
			}
			if fd.IsMap() {
				if walk(fd.MapValue().Message()) {
					return true
				}
			} else if walk(fd.Message()) {
				return true
			}
		}
		return false
	}
	holds := walk(d)
	enumHolders.Store(d.FullName(), holds)
	return holds
}

var enumHolders sync.Map // protoreflect.FullName -> bool
