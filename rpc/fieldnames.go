package rpc

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Validation names fields as the contract does (booked_at,
// nights[0].room_charge.amount); clients mostly spell them as JSON does
// (bookedAt, nights[0].roomCharge.amount). jsonFieldNames rewrites every
// error answer to the JSON spelling: the BadRequest detail's field paths,
// followed through the request's descriptor (a path that goes into a
// string field, such as a programme's definition_json, keeps the rest as
// that document spells it), and the request's field names where the
// message mentions them ("no member with this memberNumber"). It touches
// only refusals: answers that succeed cost nothing.
func jsonFieldNames(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		var ce *connect.Error
		if err == nil || !errors.As(err, &ce) {
			return res, err
		}
		m, ok := req.Any().(proto.Message)
		if !ok {
			return res, err
		}
		return res, respell(ce, m.ProtoReflect().Descriptor())
	}
}

// respell is ce with its field names spelt as JSON spells them in
// messages of type d.
func respell(ce *connect.Error, d protoreflect.MessageDescriptor) *connect.Error {
	names := fieldNamesOf(d)
	out := connect.NewError(ce.Code(), errors.New(respellText(ce.Message(), names)))
	for _, detail := range ce.Details() {
		v, err := detail.Value()
		if br, ok := v.(*errdetails.BadRequest); ok && err == nil {
			rewritten := &errdetails.BadRequest{}
			for _, fv := range br.GetFieldViolations() {
				rewritten.FieldViolations = append(rewritten.FieldViolations, &errdetails.BadRequest_FieldViolation{
					Field: jsonPath(d, fv.GetField()), Description: respellText(fv.GetDescription(), names)})
			}
			if d, err := connect.NewErrorDetail(rewritten); err == nil {
				detail = d
			}
		}
		out.AddDetail(detail)
	}
	for k, v := range ce.Meta() {
		out.Meta()[k] = v
	}
	return out
}

// pathSegment is one step of a field path: a name, and an index or key.
var pathSegment = regexp.MustCompile(`^([a-z][a-z0-9_]*)(\[[^\]]*\])?$`)

// jsonPath spells a field path of a message of type d as JSON does, as far
// as it follows d's fields.
func jsonPath(d protoreflect.MessageDescriptor, path string) string {
	segments := strings.Split(path, ".")
	for i, seg := range segments {
		m := pathSegment.FindStringSubmatch(seg)
		if d == nil || m == nil {
			break
		}
		fd := d.Fields().ByName(protoreflect.Name(m[1]))
		if fd == nil {
			break
		}
		segments[i] = fd.JSONName() + m[2]
		switch {
		case fd.IsMap():
			d = fd.MapValue().Message()
		default:
			d = fd.Message()
		}
	}
	return strings.Join(segments, ".")
}

// snakeWord is a field name as validation messages mention them.
var snakeWord = regexp.MustCompile(`\b[a-z][a-z0-9]*(_[a-z0-9]+)+\b`)

// respellText spells the request's field names in text as JSON does,
// outside double quotes: a quoted value is the client's, as it sent it
// (a property id "member_number" stays so).
func respellText(text string, names map[string]string) string {
	parts := strings.Split(text, `"`)
	for i := 0; i < len(parts); i += 2 {
		parts[i] = snakeWord.ReplaceAllStringFunc(parts[i], func(w string) string {
			if json, ok := names[w]; ok {
				return json
			}
			return w
		})
	}
	return strings.Join(parts, `"`)
}

var fieldNames sync.Map // protoreflect.FullName -> map[string]string

// fieldNamesOf maps the field names of d and of the messages in it to
// their JSON names.
func fieldNamesOf(d protoreflect.MessageDescriptor) map[string]string {
	if names, ok := fieldNames.Load(d.FullName()); ok {
		return names.(map[string]string)
	}
	names := map[string]string{}
	seen := map[protoreflect.FullName]bool{}
	var walk func(d protoreflect.MessageDescriptor)
	walk = func(d protoreflect.MessageDescriptor) {
		if d == nil || seen[d.FullName()] {
			return
		}
		seen[d.FullName()] = true
		for i := range d.Fields().Len() {
			fd := d.Fields().Get(i)
			names[string(fd.Name())] = fd.JSONName()
			if fd.IsMap() {
				walk(fd.MapValue().Message())
			} else {
				walk(fd.Message())
			}
		}
	}
	walk(d)
	fieldNames.Store(d.FullName(), names)
	return names
}
