package evidence

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
)

// TestSummaryRoundTrip: DecodeSummary reads what SummaryJSON writes, as
// json.Unmarshal does, and a record's summary is the same before signing
// (times in any zone) and after (UTC).
func TestSummaryRoundTrip(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, paris)
	r := &Record{Schema: Schema, ID: "id1", Repo: change.Repo{Owner: "o", Name: "r"}, ChangeType: Emergency,
		Subject:    Subject{PR: 7, HeadSHA: "0123456789012345678901234567890123456789"},
		Facts:      change.Facts{PR: change.PullRequest{Title: "tab\\there \"quoted\" ünïcode", MergedAt: at}},
		Exception:  &Exception{Kind: ExceptionEmergency, Reason: "r", OpenedAt: at, DueAt: at.Add(48 * time.Hour)},
		ObservedAt: at, Links: []string{"a", "b"},
	}
	data := SummaryJSON(r)
	var fast, slow Summary
	if err := DecodeSummary([]byte(data), &fast); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(data), &slow); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Errorf("DecodeSummary differs from json.Unmarshal (-want +got):\n%s", diff)
	}
	env, err := testSigner(t, 1).Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := VerifyEnvelope(env, testSigner(t, 1).Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := SummaryJSON(stored); got != data {
		t.Errorf("the stored record's summary differs:\n%s\n%s", got, data)
	}
	if fast.EventTime != "2026-03-04T04:06:07Z" || fast.Exception.DueAt.Location() != time.UTC {
		t.Errorf("times are not UTC: %+v", fast)
	}
}

// TestSummaryEncoding: the direct encoder writes what Canonical writes,
// for summaries with every field empty, full, and with hostile text.
func TestSummaryEncoding(t *testing.T) {
	t.Parallel()
	texts := []string{"", "plain", "=cmd|' /C calc'!A0", "<b>&amp;</b>", "tab\there\nline\r\"q\" \\", "\x00\x1f\x7f", "ünïcødé \u2028\u2029 🙂", "bad \xff\xfe utf-8 \xc3"}
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	for i, text := range texts {
		for _, full := range []bool{false, true} {
			s := Summary{ID: "id", ChangeType: Standard, EventTime: text, ObservedAt: text, Repo: "o/r", HeadSHA: text, Outcome: change.Compliant}
			if full {
				s = Summary{ID: text, ChangeType: Emergency, EventTime: text, ObservedAt: text, Repo: text, PR: 1 << 40, Title: text, URL: text,
					BaseRef: text, HeadSHA: text, Author: text, Ticket: TicketSummary{text, text, text, text, text, text, text},
					Reviewers: []Approver{{text, text, text}, {Login: text}}, Manager: Approver{text, text, text}, Staging: []string{text, ""},
					MergedBy: text, MergedAt: text, MergeSHA: text, Environment: text, DeployedAt: text, Deployer: text,
					Outcome: change.NonCompliant, Compliant: i%2 == 0, Reason: text, Emergency: true,
					Exception: &Exception{Kind: text, Reason: text, OpenedAt: at, DueAt: at.Add(time.Hour), Closes: text, Justification: text, By: text}, Links: []string{text}, Policy: text, Backfilled: true}
			}
			want, err := Canonical(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendSummary(nil, &s); string(got) != string(want) {
				t.Errorf("text %q full %v:\n got %s\nwant %s", text, full, got, want)
			}
		}
	}
}

func BenchmarkSummaryJSON(b *testing.B) {
	r := &Record{Schema: Schema, ID: "0123456789abcdef0123456789abcdef", Repo: change.Repo{Owner: "acme", Name: "svc"}, ChangeType: Standard,
		Subject:    Subject{PR: 7, HeadSHA: "0123456789012345678901234567890123456789"},
		Facts:      change.Facts{PR: change.PullRequest{Title: "PAY-1: fix rounding", Author: "alice", MergedAt: time.Unix(1e9, 0)}},
		ObservedAt: time.Unix(1e9, 0)}
	for b.Loop() {
		SummaryJSON(r)
	}
}
