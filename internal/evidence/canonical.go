package evidence

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting so a hostile input cannot exhaust the stack. A
// record nests about eight levels deep.
const maxDepth = 64

// Canonical encodes v as canonical JSON, in the style of RFC 8785: object
// keys sorted by UTF-16 code units, no insignificant whitespace, strings
// escaped minimally, and duplicate keys rejected.
//
// v is first marshalled with encoding/json (so struct tags, omitempty and
// MarshalJSON apply), then the generic value is re-encoded. Numbers must be
// integers that fit in 64 bits and are written exactly; any other number is
// an error, because a float's text form is not stable across encoders.
// Times are whatever encoding/json makes of them; EncodeRecord converts a
// record's times to UTC first.
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return canonicalize(raw)
}

// canonicalize re-encodes one JSON value in canonical form. It parses the
// bytes itself, rather than through encoding/json's token API, because
// that API is several times slower and cannot see duplicate keys in a
// decoded map.
func canonicalize(data []byte) ([]byte, error) {
	p := canonParser{data: data, out: make([]byte, 0, len(data))}
	if err := p.value(0); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, fmt.Errorf("canonical json: data after the value at offset %d", p.pos)
	}
	return p.out, nil
}

// canonParser reads JSON (RFC 8259) from data and appends its canonical
// form to out.
type canonParser struct {
	data []byte
	pos  int
	out  []byte
}

func (p *canonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *canonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *canonParser) value(depth int) error {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return p.errorf("nested deeper than %d", maxDepth)
		}
		if c == '{' {
			return p.object(depth + 1)
		}
		return p.array(depth + 1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return err
		}
		p.out = appendString(p.out, s)
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.data[p.pos:], []byte(lit)) {
				p.pos += len(lit)
				p.out = append(p.out, lit...)
				return nil
			}
		}
		return p.errorf("unexpected character %q", c)
	}
}

func (p *canonParser) array(depth int) error {
	p.pos++ // [
	p.out = append(p.out, '[')
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		return nil
	}
	for {
		if err := p.value(depth); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.errorf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.out = append(p.out, ',')
		case ']':
			p.pos++
			p.out = append(p.out, ']')
			return nil
		default:
			return p.errorf("want , or ] in array")
		}
	}
}

// member is one object member: its key and where its canonical value was
// written in out.
type member struct {
	key        []byte
	start, end int
}

func (p *canonParser) object(depth int) error {
	base := len(p.out)
	var members []member
	err := p.fields(func(key string) error {
		start := len(p.out)
		if err := p.value(depth); err != nil {
			return err
		}
		members = append(members, member{key: []byte(key), start: start, end: len(p.out)})
		return nil
	})
	if err != nil {
		return err
	}
	// The values were written in input order; write them again in key order.
	values := bytes.Clone(p.out[base:])
	p.out = append(p.out[:base], '{')
	slices.SortStableFunc(members, func(a, b member) int { return compareKeys(a.key, b.key) })
	for i, m := range members {
		if i > 0 {
			if bytes.Equal(members[i-1].key, m.key) {
				// Parsers disagree on which duplicate wins; a signed record
				// must mean one thing to every reader.
				return fmt.Errorf("duplicate key %q", m.key)
			}
			p.out = append(p.out, ',')
		}
		p.out = appendString(p.out, m.key)
		p.out = append(p.out, ':')
		p.out = append(p.out, values[m.start-base:m.end-base]...)
	}
	p.out = append(p.out, '}')
	return nil
}

// str reads a string at p.pos and returns its value. Like encoding/json,
// it turns invalid UTF-8 and lone surrogates into U+FFFD.
func (p *canonParser) str() ([]byte, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes, ASCII only; the value is the input. Eight
	// bytes at a time while none can end it: an envelope's payload is
	// thousands of them.
	for p.pos+8 <= len(p.data) && plain8(binary.LittleEndian.Uint64(p.data[p.pos:])) {
		p.pos += 8
	}
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			p.pos++
			return p.data[start : p.pos-1], nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		p.pos++
	}
	buf := bytes.Clone(p.data[start:p.pos])
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return buf, nil
		case c < 0x20:
			return nil, p.errorf("control character in string")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			p.pos += size
			buf = utf8.AppendRune(buf, r) // RuneError for a bad byte
		case c != '\\':
			buf = append(buf, c)
			p.pos++
		default:
			if p.pos+1 >= len(p.data) {
				return nil, p.errorf("unexpected end of input in string")
			}
			esc := p.data[p.pos+1]
			p.pos += 2
			switch esc {
			case '"', '\\', '/':
				buf = append(buf, esc)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return nil, p.errorf("bad \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := unicode.ReplacementChar
					if bytes.HasPrefix(p.data[p.pos:], []byte(`\u`)) {
						save := p.pos
						p.pos += 2
						if lo, ok := p.hex4(); ok {
							r2 = utf16.DecodeRune(r, lo)
						}
						if r2 == unicode.ReplacementChar {
							p.pos = save // not a pair: read it on its own next
						}
					}
					r = r2
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return nil, p.errorf("bad escape \\%c", esc)
			}
		}
	}
	return nil, p.errorf("unexpected end of input in string")
}

// plain8 reports whether none of the eight bytes of w is a quote, a
// backslash, a control character or non-ASCII. Each test below sets a
// byte's top bit when the byte is one of those (and may set the bits of
// the bytes after it too, which only sends the caller to the slow path).
func plain8(w uint64) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	zero := func(x uint64) uint64 { return (x - ones) &^ x & tops }
	return (zero(w^(ones*'"'))|zero(w^(ones*'\\'))|(w-ones*0x20)&^w|w)&tops == 0
}

func (p *canonParser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.pos += 4
	return r, true
}

// fields reads an object, calling field with each key with p positioned
// at its value, which field must consume.
func (p *canonParser) fields(field func(key string) error) error {
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return p.errorf("want an object")
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return p.errorf("want a string key")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return p.errorf("want : after key")
		}
		p.pos++
		if err := field(string(key)); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.errorf("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case '}':
			p.pos++
			return nil
		case ',':
			p.pos++
		default:
			return p.errorf("want , or } in object")
		}
	}
}

// elements reads an array, calling element with p positioned at each
// element, which element must consume.
func (p *canonParser) elements(element func() error) error {
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '[' {
		return p.errorf("want an array")
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		if err := element(); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return p.errorf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ']':
			p.pos++
			return nil
		case ',':
			p.pos++
		default:
			return p.errorf("want , or ] in array")
		}
	}
}

// stringValue reads a string value: a slice of data when it has no
// escapes, else a copy.
func (p *canonParser) stringValue() ([]byte, error) {
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return nil, p.errorf("want a string")
	}
	return p.str()
}

// number accepts integers only (JSON's grammar leaves no leading zeros or
// plus signs to normalise) and writes "-0" as "0".
func (p *canonParser) number() error {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	n := p.data[start:p.pos]
	switch {
	case p.pos == digits:
		return p.errorf("bad number")
	case p.data[digits] == '0' && p.pos-digits > 1:
		return p.errorf("number with a leading zero")
	}
	if p.pos < len(p.data) {
		if c := p.data[p.pos]; c == '.' || c == 'e' || c == 'E' {
			for p.pos < len(p.data) && strings.IndexByte("0123456789.eE+-", p.data[p.pos]) >= 0 {
				p.pos++
			}
			return fmt.Errorf("number %s is not a 64-bit integer: records hold no floats", p.data[start:p.pos])
		}
	}
	if string(n) == "-0" {
		n = n[1:]
	}
	if len(n) > 18 { // beyond 18 digits, check it fits in 64 bits
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			if _, err := strconv.ParseUint(string(n), 10, 64); err != nil {
				return fmt.Errorf("number %s is not a 64-bit integer", n)
			}
		}
	}
	p.out = append(p.out, n...)
	return nil
}

// writeString escapes as RFC 8785 (ECMAScript JSON.stringify) does: only
// the quote, the backslash and control characters; everything else is
// written as UTF-8. Invalid UTF-8 cannot reach here: the parser replaces it.
func appendString(out, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		out = append(out, s[start:i]...)
		switch c {
		case '"':
			out = append(out, `\"`...)
		case '\\':
			out = append(out, `\\`...)
		case '\b':
			out = append(out, `\b`...)
		case '\f':
			out = append(out, `\f`...)
		case '\n':
			out = append(out, `\n`...)
		case '\r':
			out = append(out, `\r`...)
		case '\t':
			out = append(out, `\t`...)
		default:
			out = append(out, `\u00`...)
			out = append(out, hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// compareKeys orders keys by UTF-16 code units, as RFC 8785 requires.
// It differs from Go's byte order only for characters above U+FFFF, so the
// common all-ASCII case takes the fast path.
func compareKeys(a, b []byte) int {
	if isASCII(a) && isASCII(b) {
		return bytes.Compare(a, b)
	}
	return slices.Compare(utf16.Encode([]rune(string(a))), utf16.Encode([]rune(string(b))))
}

func isASCII(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// EncodeRecord returns the canonical JSON of a valid record, with every time
// in UTC so that the same instant always encodes the same way.
func EncodeRecord(r *Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("invalid record: %w", err)
	}
	if hasNonUTC(reflect.ValueOf(r)) {
		// Convert a copy: the caller's record may be shared. The JSON round
		// trip is a deep copy that loses nothing encoding/json would write.
		raw, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode record: %w", err)
		}
		var cp Record
		if err := json.Unmarshal(raw, &cp); err != nil {
			return nil, fmt.Errorf("encode record: %w", err)
		}
		toUTC(reflect.ValueOf(&cp))
		r = &cp
	}
	return Canonical(r)
}

// hasNonUTC reports whether any time reachable from v has a non-zero offset,
// which encoding/json would write as "+hh:mm" rather than "Z".
func hasNonUTC(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && hasNonUTC(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			_, off := v.Interface().(time.Time).Zone()
			return off != 0
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && hasNonUTC(v.Field(i)) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if hasNonUTC(v.Index(i)) {
				return true
			}
		}
	}
	return false
}

// toUTC converts, in place, every settable time reachable from v to UTC.
func toUTC(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			toUTC(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.CanSet() {
				v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				toUTC(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			toUTC(v.Index(i))
		}
	}
}
