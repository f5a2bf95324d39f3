package jira_test

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jira"
)

func TestParseWebhook(t *testing.T) {
	t.Parallel()
	moved, err := os.ReadFile("testdata/webhook-issue-moved.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		body      string
		wantEvent string
		wantKeys  []string
		wantErr   bool
	}{
		{"moved issue names the old key too", string(moved), "jira:issue_updated", []string{"CHG-42", "PAY-123"}, false},
		{"transition", `{"timestamp":1,"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"PAY-7"},
			"changelog":{"items":[{"field":"status","fieldtype":"jira","fromString":"To Do","toString":"Done"}]}}`,
			"jira:issue_updated", []string{"PAY-7"}, false},
		{"comment", `{"webhookEvent":"comment_created","issue":{"key":"PAY-7"},"comment":{"body":"PAY-8"}}`,
			"comment_created", []string{"PAY-7"}, false},
		{"no issue", `{"webhookEvent":"project_created","project":{"key":"NEW"}}`, "project_created", nil, false},
		{"custom field named key is ignored", `{"webhookEvent":"jira:issue_updated","issue":{"key":"PAY-7"},
			"changelog":{"items":[{"field":"Key","fieldtype":"custom","fromString":"ABC-1","toString":"ABC-2"}]}}`,
			"jira:issue_updated", []string{"PAY-7"}, false},
		{"bad issue key", `{"webhookEvent":"jira:issue_updated","issue":{"key":"not a key"}}`, "jira:issue_updated", nil, true},
		{"no event", `{"issue":{"key":"PAY-7"}}`, "", nil, true},
		{"a 10,000-character key", `{"webhookEvent":"jira:issue_updated","issue":{"key":"` + strings.Repeat("A", 9998) + `-1"}}`, "jira:issue_updated", nil, true},
		{"a 10,000-character key in the changelog", `{"webhookEvent":"jira:issue_updated","issue":{"key":"PAY-7"},
			"changelog":{"items":[{"field":"Key","fieldtype":"jira","fromString":"` + strings.Repeat("A", 9998) + `-1","toString":"PAY-7"}]}}`,
			"jira:issue_updated", []string{"PAY-7"}, false},
		{"not an object", `[1,2]`, "", nil, true},
		{"not JSON", `webhookEvent=jira:issue_updated`, "", nil, true},
		{"empty", ``, "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			event, keys, err := jira.ParseWebhook([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if event != tc.wantEvent {
				t.Errorf("event = %q, want %q", event, tc.wantEvent)
			}
			if diff := cmp.Diff(tc.wantKeys, keys); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseWebhook(f *testing.F) {
	if b, err := os.ReadFile("testdata/webhook-issue-moved.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"webhookEvent":"jira:issue_created","issue":{"key":"A-1"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		event, keys, err := jira.ParseWebhook(body)
		if err == nil && event == "" {
			t.Fatal("no error and no event")
		}
		if err != nil && len(err.Error()) > 400 {
			t.Fatalf("an error of %d bytes repeats the input", len(err.Error()))
		}
		for _, k := range keys {
			if len(k) > change.MaxTicketKey {
				t.Fatalf("a key of %d bytes", len(k))
			}
		}
		if err != nil && keys != nil {
			t.Fatal("keys with an error")
		}
	})
}
