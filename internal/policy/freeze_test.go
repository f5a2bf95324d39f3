package policy

import (
	"strings"
	"testing"
	"time"
)

func TestFreezeWindows(t *testing.T) {
	t.Parallel()
	p, err := Parse("changegate.yml", []byte(`version: 1
freeze:
  - 2026-12-20T00:00:00Z/2027-01-04T00:00:00Z
  - Fri 18:00 - Mon 06:00 Europe/Berlin
  - wed 12:00 - wed 13:00 UTC
`))
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, tc := range []struct {
		at     time.Time
		frozen string
	}{
		{time.Date(2026, 12, 24, 10, 0, 0, 0, time.UTC), "2026-12-20T00:00:00Z/2027-01-04T00:00:00Z"},
		{time.Date(2027, 1, 4, 12, 0, 0, 0, time.UTC), ""},                                   // after the fixed window; a Monday, past 06:00 Berlin
		{time.Date(2026, 11, 6, 18, 0, 0, 0, berlin), "Fri 18:00 - Mon 06:00 Europe/Berlin"}, // a Friday
		{time.Date(2026, 11, 8, 23, 0, 0, 0, berlin), "Fri 18:00 - Mon 06:00 Europe/Berlin"}, // Sunday night
		{time.Date(2026, 11, 9, 6, 0, 0, 0, berlin), ""},                                     // Monday 06:00
		{time.Date(2026, 11, 6, 17, 59, 0, 0, berlin), ""},
		{time.Date(2026, 11, 11, 12, 30, 0, 0, time.UTC), "wed 12:00 - wed 13:00 UTC"},
	} {
		got, ok := p.FrozenAt(tc.at)
		if got != tc.frozen || ok != (tc.frozen != "") {
			t.Errorf("%s: frozen %q (%v), want %q", tc.at, got, ok, tc.frozen)
		}
	}
}

func TestFreezeValidation(t *testing.T) {
	t.Parallel()
	for window, want := range map[string]string{
		"2027-01-04T00:00:00Z/2026-12-20T00:00:00Z": "the start is not before the end",
		"2026-12-20/2027-01-04":                     "RFC 3339",
		"Fri 18:00 - Mon 06:00 Mars/Olympus":        "IANA time zone",
		"Fri 25:00 - Mon 06:00 UTC":                 "not a time of day",
		"every friday":                              "neither START/END",
	} {
		_, err := Parse("changegate.yml", []byte("version: 1\nfreeze:\n  - "+window+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "changegate.yml:3:") {
			t.Errorf("%q: %v, want an error at line 3 saying %q", window, err, want)
		}
	}
	base, _ := Parse("org.yml", []byte("version: 1\nfreeze: [\"Fri 18:00 - Mon 06:00 UTC\"]\n"))
	repo, _ := Parse("repo.yml", []byte("version: 1\nfreeze: [\"2026-12-20T00:00:00Z/2027-01-04T00:00:00Z\"]\n"))
	if _, err := Merge(base, repo); err == nil || !strings.Contains(err.Error(), "drops the baseline's freeze window") {
		t.Errorf("dropping a baseline window: %v", err)
	}
}
