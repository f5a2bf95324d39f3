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
