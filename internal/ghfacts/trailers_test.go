package ghfacts

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
)

func TestCoAuthors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		message string
		want    []change.Person
	}{
		{"none", "Fix the thing\n\nBecause.", nil},
		{"one", "Fix\n\nCo-authored-by: Ada Lovelace <ada@example.com>",
			[]change.Person{{Name: "Ada Lovelace", Email: "ada@example.com"}}},
		{"case-insensitive key and spacing", "Fix\n\nco-AUTHORED-by :  Ada <ada@example.com>  \r\n",
			[]change.Person{{Name: "Ada", Email: "ada@example.com"}}},
		{"several, with noreply logins", "Fix\n\nCo-authored-by: Ada <12345+ada-l@users.noreply.github.com>\nSigned-off-by: Bob <bob@example.com>\nCo-authored-by: Old Timer <oldtimer@users.noreply.github.com>\nCo-authored-by: Bot <41898282+github-actions[bot]@users.noreply.github.com>",
			[]change.Person{
				{Name: "Ada", Email: "12345+ada-l@users.noreply.github.com", Login: "ada-l"},
				{Name: "Old Timer", Email: "oldtimer@users.noreply.github.com", Login: "oldtimer"},
				{Name: "Bot", Email: "41898282+github-actions[bot]@users.noreply.github.com", Login: "github-actions[bot]"},
			}},
		{"duplicates by email", "x\n\nCo-authored-by: Ada <ADA@example.com>\nCo-authored-by: Ada L <ada@example.com>",
			[]change.Person{{Name: "Ada", Email: "ADA@example.com"}}},
		{"squash body, mid-message", "Squash (#12)\n\n* one\n\nCo-authored-by: Ada <ada@example.com>\n\n* two",
			[]change.Person{{Name: "Ada", Email: "ada@example.com"}}},
		{"no email", "x\n\nCo-authored-by: Ada", nil},
		{"not at line start", "x\n\nSee Co-authored-by: Ada <ada@example.com>", nil},
		{"empty name", "x\n\nCo-authored-by: <ada@example.com>", []change.Person{{Email: "ada@example.com"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, CoAuthors(tt.message)); diff != "" {
				t.Errorf("CoAuthors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoginFromEmail(t *testing.T) {
	t.Parallel()
	tests := []struct{ email, want string }{
		{"12345+octocat@users.noreply.github.com", "octocat"},
		{"octocat@users.noreply.github.com", "octocat"},
		{"Octo-Cat@Users.NoReply.GitHub.com", "Octo-Cat"},
		{"49699333+dependabot[bot]@users.noreply.github.com", "dependabot[bot]"},
		{"octocat@github.com", ""},
		{"noreply@github.com", ""},
		{"a+b+c@users.noreply.github.com", ""},
		{"-bad@users.noreply.github.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := LoginFromEmail(tt.email); got != tt.want {
			t.Errorf("LoginFromEmail(%q) = %q, want %q", tt.email, got, tt.want)
		}
	}
}

func FuzzCoAuthors(f *testing.F) {
	f.Add("Fix\n\nCo-authored-by: Ada <1+ada@users.noreply.github.com>")
	f.Add("co-authored-by:<>\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		for _, p := range CoAuthors(msg) {
			if p.Email == "" || strings.ContainsAny(p.Email, "<>\n") || strings.ContainsAny(p.Name, "<\n") {
				t.Errorf("CoAuthors(%q) gave %+v", msg, p)
			}
		}
	})
}

func TestApprovers(t *testing.T) {
	t.Parallel()
	r := func(user, state string, min int) change.Review {
		return change.Review{User: user, State: state, SubmittedAt: time0.Add(time.Duration(min) * time.Minute)}
	}
	reviews := []change.Review{
		r("alice", change.ReviewApproved, 1),
		r("bob", change.ReviewApproved, 2),
		r("bob", change.ReviewChangesRequested, 3),
		r("carol", change.ReviewApproved, 4),
		r("carol", change.ReviewCommented, 5),
		r("dave", change.ReviewApproved, 6),
		r("dave", change.ReviewDismissed, 7),
		r("erin", change.ReviewChangesRequested, 8),
		r("erin", change.ReviewApproved, 9),
		r("frank", change.ReviewCommented, 10),
	}
	if diff := cmp.Diff([]string{"alice", "carol", "erin"}, Approvers(reviews)); diff != "" {
		t.Errorf("Approvers (-want +got):\n%s", diff)
	}
}

var time0 = mustTime("2024-05-01T10:00:00Z")

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
