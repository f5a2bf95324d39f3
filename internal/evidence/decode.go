package evidence

import (
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// recordStatement is an in-toto Statement of a change record, decoded in
// one pass. It has statement's fields, and json.Unmarshal decodes into it
// exactly as into a struct embedding statement whose Predicate is a Record.
type recordStatement struct {
	Type          string       `json:"_type"`
	Subject       []descriptor `json:"subject"`
	PredicateType string       `json:"predicateType"`
	Predicate     Record       `json:"predicate"`
}

// decodeStatement is json.Unmarshal(payload, &st), only faster for the
// payloads a Signer writes.
//
// encoding/json spends as long on a record as ed25519 spends on its
// signature, so Verify first tries a decoder that reads only the plainest
// JSON: every key the exact name of a field, keys in ascending byte order
// (so none twice), and every value of its field's type, as canonical JSON
// has them. On any of that it decodes exactly what json.Unmarshal decodes.
// On anything else it gives up and json.Unmarshal decodes the payload, so
// that what is accepted and the errors given are json.Unmarshal's.
func decodeStatement(payload []byte) (*recordStatement, error) {
	st := new(recordStatement)
	p := canonParser{data: payload}
	if decodeValue(&p, decodeRecordStatement, reflect.ValueOf(st).Elem()) {
		if p.skipSpace(); p.pos == len(payload) {
			return st, nil
		}
	}
	*st = recordStatement{}
	if err := json.Unmarshal(payload, st); err != nil {
		return nil, err
	}
	return st, nil
}

// A decodeFunc decodes the JSON value at p.pos into v, a zero value of its
// type, as json.Unmarshal would, or reports false: not plain enough.
type decodeFunc func(p *canonParser, v reflect.Value) bool

var decodeRecordStatement = compileDecoder(reflect.TypeFor[recordStatement](), map[reflect.Type]bool{})

var (
	timeType            = reflect.TypeFor[time.Time]()
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	numberType          = reflect.TypeFor[json.Number]()
)

// compileDecoder returns the decodeFunc for t, or nil when t is one the
// plain decoder leaves to json.Unmarshal: a type with its own unmarshalling
// (but time.Time) or that encoding/json treats specially (json.Number,
// []byte), embedded fields, a ",string" field, and kinds no record holds.
// A nil decoder only costs speed: a record with such a value is decoded by
// json.Unmarshal. building holds the types being compiled, so that a
// recursive type is left to json.Unmarshal too.
func compileDecoder(t reflect.Type, building map[reflect.Type]bool) decodeFunc {
	if t == timeType {
		return decodeTime
	}
	// json.Unmarshal looks for methods on the pointer to any value.
	if pt := reflect.PointerTo(t); pt.Implements(unmarshalerType) || pt.Implements(textUnmarshalerType) || t == numberType || building[t] {
		return nil
	}
	building[t] = true
	defer delete(building, t)
	switch t.Kind() {
	case reflect.String:
		return decodeString
	case reflect.Bool:
		return decodeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return decodeInt
	case reflect.Pointer:
		return pointerDecoder(t, compileDecoder(t.Elem(), building))
	case reflect.Slice:
		return sliceDecoder(t, compileDecoder(t.Elem(), building))
	case reflect.Map:
		kt := t.Key()
		if kt.Kind() != reflect.String || reflect.PointerTo(kt).Implements(textUnmarshalerType) {
			return nil
		}
		return mapDecoder(t, compileDecoder(t.Elem(), building))
	case reflect.Struct:
		return structDecoder(t, building)
	}
	return nil
}

// decodeValue decodes one value with dec, a nil dec giving up. A null
// leaves a zero value as it is whatever its type, as it does in
// json.Unmarshal (time.Time's UnmarshalJSON ignores it too).
func decodeValue(p *canonParser, dec decodeFunc, v reflect.Value) bool {
	if dec == nil {
		return false
	}
	p.skipSpace()
	if p.literal("null") {
		return true
	}
	return dec(p, v)
}

func decodeString(p *canonParser, v reflect.Value) bool {
	s, ok := p.quoted()
	if ok {
		v.SetString(string(s))
	}
	return ok
}

func decodeBool(p *canonParser, v reflect.Value) bool {
	switch {
	case p.literal("true"):
		v.SetBool(true)
	case p.literal("false"):
	default:
		return false
	}
	return true
}

// decodeInt takes an integer, as json.Unmarshal parses it: a fraction or
// exponent is not plain.
func decodeInt(p *canonParser, v reflect.Value) bool {
	start := p.pos
	if p.pos < len(p.data) && p.data[p.pos] == '-' {
		p.pos++
	}
	digits := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == digits || (p.data[digits] == '0' && p.pos-digits > 1) {
		return false
	}
	if p.pos < len(p.data) && strings.IndexByte(".eE", p.data[p.pos]) >= 0 {
		return false
	}
	n, err := strconv.ParseInt(string(p.data[start:p.pos]), 10, 64)
	if err != nil || v.OverflowInt(n) {
		return false
	}
	v.SetInt(n)
	return true
}

// decodeTime hands the string to time.Time's UnmarshalJSON, with its quotes,
// as json.Unmarshal does.
func decodeTime(p *canonParser, v reflect.Value) bool {
	start := p.pos
	if _, ok := p.quoted(); !ok {
		return false
	}
	return v.Addr().Interface().(*time.Time).UnmarshalJSON(p.data[start:p.pos]) == nil
}

func pointerDecoder(t reflect.Type, elem decodeFunc) decodeFunc {
	if elem == nil {
		return nil
	}
	return func(p *canonParser, v reflect.Value) bool {
		e := reflect.New(t.Elem())
		v.Set(e)
		return elem(p, e.Elem())
	}
}

// sliceDecoder decodes an array. Like json.Unmarshal it makes an empty,
// not nil, slice of [].
func sliceDecoder(t reflect.Type, elem decodeFunc) decodeFunc {
	if elem == nil {
		return nil
	}
	return func(p *canonParser, v reflect.Value) bool {
		if !p.consume('[') {
			return false
		}
		if p.skipSpace(); p.consume(']') {
			v.Set(reflect.MakeSlice(t, 0, 0))
			return true
		}
		for i := 0; ; i++ {
			if i == v.Cap() {
				v.Grow(1)
			}
			v.SetLen(i + 1)
			if !decodeValue(p, elem, v.Index(i)) {
				return false
			}
			p.skipSpace()
			switch {
			case p.consume(']'):
				return true
			case !p.consume(','):
				return false
			}
		}
	}
}

// mapDecoder decodes an object into a map with string keys. Like
// json.Unmarshal it makes an empty, not nil, map of {}.
func mapDecoder(t reflect.Type, elem decodeFunc) decodeFunc {
	if elem == nil {
		return nil
	}
	return func(p *canonParser, v reflect.Value) bool {
		m := reflect.MakeMap(t)
		v.Set(m)
		var last []byte
		return p.members(func(key []byte) bool {
			if last != nil && string(key) <= string(last) {
				return false // out of order or twice
			}
			last = key
			e := reflect.New(t.Elem()).Elem()
			if !decodeValue(p, elem, e) {
				return false
			}
			k := reflect.New(t.Key()).Elem()
			k.SetString(string(key))
			m.SetMapIndex(k, e)
			return true
		})
	}
}

type fieldDecoder struct {
	name  string
	index int
	dec   decodeFunc
}

// structDecoder names the fields as encoding/json does for a struct
// without embedded fields: the tag's name, else the field's. Tag names
// other than letters, digits and underscores are left to json.Unmarshal,
// which has its own rules for them.
func structDecoder(t reflect.Type, building map[reflect.Type]bool) decodeFunc {
	var fields []fieldDecoder
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil
		}
		tag := sf.Tag.Get("json")
		if !sf.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.IndexFunc(name, func(r rune) bool {
			return r != '_' && (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z')
		}) >= 0 {
			return nil
		}
		if name == "" {
			name = sf.Name
		}
		f := fieldDecoder{name: name, index: i}
		if !slices.Contains(strings.Split(opts, ","), "string") {
			f.dec = compileDecoder(sf.Type, building)
		}
		fields = append(fields, f)
	}
	slices.SortFunc(fields, func(a, b fieldDecoder) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(fields); i++ {
		if fields[i].name == fields[i-1].name {
			return nil // encoding/json drops both
		}
	}
	return func(p *canonParser, v reflect.Value) bool {
		next := 0
		return p.members(func(key []byte) bool {
			// Keys come in the fields' order, so the search goes on
			// from the last field found, and a key out of order or
			// given twice is not found.
			for next < len(fields) && fields[next].name < string(key) {
				next++
			}
			if next == len(fields) || fields[next].name != string(key) {
				return false
			}
			f := fields[next]
			next++
			return decodeValue(p, f.dec, v.Field(f.index))
		})
	}
}

// members reads an object, calling member with each key with p positioned
// at its value, which member must consume.
func (p *canonParser) members(member func(key []byte) bool) bool {
	if !p.consume('{') {
		return false
	}
	if p.skipSpace(); p.consume('}') {
		return true
	}
	for {
		p.skipSpace()
		key, ok := p.quoted()
		if p.skipSpace(); !ok || !p.consume(':') || !member(key) {
			return false
		}
		p.skipSpace()
		switch {
		case p.consume('}'):
			return true
		case !p.consume(','):
			return false
		}
	}
}

// quoted reads a string at p.pos, which must start one.
func (p *canonParser) quoted() ([]byte, bool) {
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return nil, false
	}
	s, err := p.str()
	return s, err == nil
}

// consume reads c if it is next.
func (p *canonParser) consume(c byte) bool {
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// literal reads lit if it is next. What follows is for the caller to check:
// a delimiter, whitespace or the end.
func (p *canonParser) literal(lit string) bool {
	if len(p.data)-p.pos >= len(lit) && string(p.data[p.pos:p.pos+len(lit)]) == lit {
		p.pos += len(lit)
		return true
	}
	return false
}
