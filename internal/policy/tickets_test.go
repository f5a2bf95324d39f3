package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
)

func TestTicketKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sources  []string
		projects []string
		pr       change.PullRequest
		want     []string
	}{
		{name: "title", pr: change.PullRequest{Title: "PAY-123: fix rounding"}, want: []string{"PAY-123"}},
		{name: "branch", pr: change.PullRequest{HeadRef: "feature/PAY-123-fix"}, want: []string{"PAY-123"}},
		{name: "branch with underscore", pr: change.PullRequest{HeadRef: "PAY-123_fix"}, want: []string{"PAY-123"}},
		{name: "body link", pr: change.PullRequest{Body: "See https://acme.atlassian.net/browse/OPS-7."}, want: []string{"OPS-7"}},
		{name: "order of appearance, title then branch then body, no repeats",
			pr:   change.PullRequest{Title: "WEB-2 and PAY-1", HeadRef: "PAY-1-x", Body: "OPS-3, WEB-2, MY_PROJ-10"},
			want: []string{"WEB-2", "PAY-1", "OPS-3", "MY_PROJ-10"}},
		{name: "only configured sources", sources: []string{"body"},
			pr: change.PullRequest{Title: "PAY-1", HeadRef: "PAY-2", Body: "PAY-3"}, want: []string{"PAY-3"}},
		{name: "word-bounded", pr: change.PullRequest{Title: "xPAY-1 PAY-2x PAY-3a 1PAY-4 PAY-5.1 (PAY-6)"}, want: []string{"PAY-5", "PAY-6"}},
		{name: "lowercase is not a key", pr: change.PullRequest{HeadRef: "feature/pay-123"}, want: nil},
		{name: "no leading zero", pr: change.PullRequest{Title: "PAY-0 PAY-01"}, want: nil},
		{name: "single-letter prefix is not a key", pr: change.PullRequest{Title: "X-1 X-Forwarded-For"}, want: nil},
		{name: "look-alikes dropped without an allowlist",
			pr:   change.PullRequest{Title: "CVE-2024-1234 SHA-256 SHA-1 UTF-8 UTF-16 ISO-8601 RFC-9110 CWE-79 AES-256 PAY-9"},
			want: []string{"PAY-9"}},
		{name: "allowlist filters projects", projects: []string{"PAY"},
			pr: change.PullRequest{Title: "OPS-1 PAY-2", Body: "pay-3 PAY-4"}, want: []string{"PAY-2", "PAY-4"}},
		{name: "a key longer than change.MaxTicketKey is not a key",
			pr: change.PullRequest{Title: strings.Repeat("A", change.MaxTicketKey) + "-1 PAY-2"}, want: []string{"PAY-2"}},
		{name: "allowlist wins over the look-alike list", projects: []string{"RFC"},
			pr: change.PullRequest{Title: "RFC-12 CVE-2024-1"}, want: []string{"RFC-12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Defaults()
			if tt.sources != nil {
				p.Ticket.Sources = tt.sources
			}
			p.Ticket.Projects = tt.projects
			if diff := cmp.Diff(tt.want, TicketKeys(p, tt.pr)); diff != "" {
				t.Errorf("TicketKeys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"docs/**", "docs/a.md", true},
		{"docs/**", "docs/a/b/c.md", true},
		{"docs/**", "src/docs/a.md", false},
		{"**/*.md", "README.md", true},
		{"**/*.md", "a/b/README.md", true},
		{"clusters/prod/**", "clusters/prod/app/kustomization.yaml", true},
		{"clusters/prod/**", "clusters/production/x", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"release/*", "release/1.2", true},
		{"release/*", "release/1/2", false},
		{"main", "main", true},
		{"main", "maint", false},
		{"argocd/*-staging", "argocd/app-staging", true},
		{"ci / deploy-*", "ci / deploy-staging", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.name, func(t *testing.T) {
			t.Parallel()
			if err := validGlob(tt.pattern); err != nil {
				t.Fatalf("validGlob(%q) = %v", tt.pattern, err)
			}
			if got := matchGlob(tt.pattern, tt.name); got != tt.want {
				t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
		})
	}
}
