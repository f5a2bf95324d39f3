package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"
)

// referencePayload is what encoding/json decodes, which parsePayload
// must match.
func referencePayload(body []byte) (payload, error) {
	var p payload
	if !strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "{") {
		return p, ErrMalformed
	}
	err := json.Unmarshal(body, &p)
	return p, err
}

// comparable says whether encoding/json and parsePayload are meant to
// agree on body: they differ, by design, where a key repeats (encoding/json
// merges two objects into one) or differs from a field's name only in case
// (encoding/json takes it; GitHub never sends one).
func comparable(body []byte) bool {
	ok := true
	var walk func(v gjson.Result)
	walk = func(v gjson.Result) {
		seen := map[string]bool{}
		v.ForEach(func(k, f gjson.Result) bool {
			if v.IsObject() {
				if seen[k.Str] || k.Str != strings.ToLower(k.Str) {
					ok = false
				}
				seen[k.Str] = true
			}
			if f.IsObject() || f.IsArray() {
				walk(f)
			}
			return ok
		})
	}
	walk(gjson.ParseBytes(body))
	return ok
}

func checkAgainstReference(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := referencePayload(body)
	got, err := parsePayload(body)
	if (err != nil) != (wantErr != nil) {
		if comparable(body) {
			t.Fatalf("%q: parsePayload err = %v, encoding/json err = %v", body, err, wantErr)
		}
		return
	}
	if err != nil || !comparable(body) {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%q: parsePayload differs from encoding/json (-json +parsePayload):\n%s", body, diff)
	}
}

// TestParsePayloadMatchesEncodingJSON holds the sparse parser to
// encoding/json on every example GitHub documents, and on bodies that
// probe types, nulls, escapes and bad UTF-8.
func TestParsePayloadMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, ex := range githubExamples(t) {
		if _, err := parsePayload(ex.body); err != nil {
			t.Errorf("%s: %v", ex.file, err)
		}
		checkAgainstReference(t, ex.body)
	}
	for _, body := range payloadProbes {
		checkAgainstReference(t, []byte(body))
	}
}

var payloadProbes = []string{
	`{}`, ` {"action":"opened"} `, `{"action":null}`, `{"action":5}`, `{"action":"a\u00e9\ud83d\ude00"}`,
	`{"action":"\ud800"}`, "{\"action\":\"\xff\xfe\"}", `{"number":1.0}`, `{"number":1e3}`, `{"number":-0}`,
	`{"number":99999999999999999999}`, `{"installation":null}`, `{"installation":[]}`, `{"installation":{"id":"7"}}`,
	`{"installation":{"id":7,"account":null}}`, `{"installation":{"id":7,"account":{"login":1}}}`,
	`{"installation":{"suspended_at":null}}`, `{"installation":{"suspended_at":""}}`,
	`{"repositories":null}`, `{"repositories":[]}`, `{"repositories":[null,{"id":1}]}`, `{"repositories":[1]}`,
	`{"repositories":{}}`, `{"pull_request":{"head":null}}`, `{"pull_request":{"head":{"sha":null}}}`,
	`{"check_run":{"app":{"id":1},"pull_requests":[{"number":2},null]}}`, `{"check_run":{"pull_requests":[{"number":"2"}]}}`,
	`{"issue":{"pull_request":{}}}`, `{"issue":{"pull_request":null}}`, `{"issue":{"pull_request":"x"}}`,
	`{"comment":{"body":"x"}}`, `{"comment":"looks good"}`, `{"comment":null}`, `{"deleted":"true"}`, `{"deleted":null}`,
	`{"commits":[{"id":"a"},{"id":null},{}]}`, `{"deployment":{"id":-1,"sha":"s"}}`, `{"merge_group":[]}`,
	`{"a":1} x`, `{"a":}`, `{"a":1,}`, `{"pull_request":{"number":1}`, `[]`, `null`, ``, `"x"`,
}

// FuzzParsePayload holds the sparse parser to encoding/json on any body.
//
//	go test ./internal/webhook -run '^$' -fuzz FuzzParsePayload -fuzztime 60s
func FuzzParsePayload(f *testing.F) {
	for _, b := range payloadProbes {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgainstReference(t, body)
	})
}
