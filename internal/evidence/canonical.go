package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"time"
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

// canonicalize re-encodes one JSON value in canonical form.
func canonicalize(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(data))
	if err := canonValue(dec, &out, 0); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("canonical json: data after the value")
	}
	return out.Bytes(), nil
}

func canonValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	return canonToken(dec, out, tok, depth)
}

func canonToken(dec *json.Decoder, out *bytes.Buffer, tok json.Token, depth int) error {
	switch t := tok.(type) {
	case nil:
		out.WriteString("null")
	case bool:
		out.WriteString(strconv.FormatBool(t))
	case string:
		writeString(out, t)
	case json.Number:
		n, err := canonNumber(t)
		if err != nil {
			return err
		}
		out.WriteString(n)
	case json.Delim:
		if depth >= maxDepth {
			return fmt.Errorf("nested deeper than %d", maxDepth)
		}
		switch t {
		case '[':
			return canonArray(dec, out, depth+1)
		case '{':
			return canonObject(dec, out, depth+1)
		}
		return fmt.Errorf("unexpected %q", t)
	default:
		return fmt.Errorf("unexpected token %T", tok)
	}
	return nil
}

func canonArray(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	out.WriteByte('[')
	for i := 0; ; i++ {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok == json.Delim(']') {
			out.WriteByte(']')
			return nil
		}
		if i > 0 {
			out.WriteByte(',')
		}
		if err := canonToken(dec, out, tok, depth); err != nil {
			return err
		}
	}
}

type member struct {
	key   string
	value []byte
}

func canonObject(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	var members []member
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok == json.Delim('}') {
			break
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key is %T", tok)
		}
		var v bytes.Buffer
		if err := canonValue(dec, &v, depth); err != nil {
			return err
		}
		members = append(members, member{key, v.Bytes()})
	}
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.key, b.key) })
	out.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			if members[i-1].key == m.key {
				// Parsers disagree on which duplicate wins; a signed record
				// must mean one thing to every reader.
				return fmt.Errorf("duplicate key %q", m.key)
			}
			out.WriteByte(',')
		}
		writeString(out, m.key)
		out.WriteByte(':')
		out.Write(m.value)
	}
	out.WriteByte('}')
	return nil
}

// canonNumber accepts integers only and writes them in shortest decimal
// form ("-0" becomes "0").
func canonNumber(n json.Number) (string, error) {
	s := string(n)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return strconv.FormatInt(i, 10), nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return strconv.FormatUint(u, 10), nil
	}
	return "", fmt.Errorf("number %s is not a 64-bit integer: records hold no floats", s)
}

// writeString escapes as RFC 8785 (ECMAScript JSON.stringify) does: only
// the quote, the backslash and control characters; everything else is
// written as UTF-8. Invalid UTF-8 cannot reach here: the decoder replaces it.
func writeString(out *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	out.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		out.WriteString(s[start:i])
		switch c {
		case '"':
			out.WriteString(`\"`)
		case '\\':
			out.WriteString(`\\`)
		case '\b':
			out.WriteString(`\b`)
		case '\f':
			out.WriteString(`\f`)
		case '\n':
			out.WriteString(`\n`)
		case '\r':
			out.WriteString(`\r`)
		case '\t':
			out.WriteString(`\t`)
		default:
			out.WriteString(`\u00`)
			out.WriteByte(hexDigits[c>>4])
			out.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	out.WriteString(s[start:])
	out.WriteByte('"')
}

// compareUTF16 orders strings by UTF-16 code units, as RFC 8785 requires.
// It differs from Go's byte order only for characters above U+FFFF, so the
// common all-ASCII case takes the fast path.
func compareUTF16(a, b string) int {
	if isASCII(a) && isASCII(b) {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func isASCII(s string) bool {
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
