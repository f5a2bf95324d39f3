package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/changegate/changegate/internal/change"
)

// FuzzParse: Parse never panics, and whatever it accepts is valid, has a
// digest, and reads back the same after being written out.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "..", "config", "policy.default.yml")); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		org,
		"version: 1\n",
		"",
		"version: 1\nreview: {required: 2}\nreveiw: 1\n",
		"version: 1\nproduction: {environments: &e [a]}\nstaging: {environments: *e}\n",
		"version: 1\nemergency: {window: 1h30m}\nexempt: {paths: ['**/*.md']}\n",
		"version: 1\n---\nversion: 1\n",
		"version: 1\nticket: {sources: [title, !!str 3]}\n",
		"a: &a [*a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yml", data)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a policy and an error %v", err)
			}
			return
		}
		if errs := p.validate(); len(errs) > 0 {
			t.Fatalf("accepted an invalid policy: %v", errs)
		}
		if len(p.Digest()) != 64 {
			t.Fatalf("Digest() = %q", p.Digest())
		}
		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := Parse("again.yml", out)
		if err != nil {
			t.Fatalf("Parse of its own output %q: %v", out, err)
		}
		if diff := cmp.Diff(p, again, policyOpts); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		if p.Digest() != again.Digest() {
			t.Fatal("round trip changed the digest")
		}
	})
}

// FuzzMerge: merging any repository policy over a baseline never panics;
// whatever it accepts is valid, is the same policy every time, and a
// baseline merged over itself is accepted.
//
//	go test ./internal/policy -run '^$' -fuzz FuzzMerge -fuzztime 60s
func FuzzMerge(f *testing.F) {
	for _, s := range []string{
		"version: 1\n", "version: 1\nreview: {required: 1}\n", "version: 1\nreview: {required: 3}\n",
		"version: 1\nproduction: {branches: [release/*]}\n", "version: 1\nticket: {projects: [PAY, WEB]}\n",
		"version: 1\nstaging: {environments: [staging], checks: [smoke]}\n", "version: 1\nexempt: {paths: ['docs/**']}\n",
		"version: 1\nmanager: {teams: [acme/other]}\n", "version: 1\nemergency: {window: 96h}\n",
	} {
		f.Add([]byte(org), []byte(s))
		f.Add([]byte("version: 1\n"), []byte(s))
	}
	f.Fuzz(func(t *testing.T, baseData, repoData []byte) {
		baseline, err := Parse("org.yml", baseData)
		if err != nil {
			return
		}
		if self, err := Merge(baseline, baseline); err != nil {
			t.Fatalf("a baseline merged over itself was refused: %v", err)
		} else if errs := self.validate(); len(errs) > 0 {
			t.Fatalf("a baseline merged over itself is invalid: %v", errs)
		}
		repo, err := Parse("repo.yml", repoData)
		if err != nil {
			return
		}
		merged, err := Merge(baseline, repo)
		if err != nil {
			if merged != nil {
				t.Fatalf("Merge returned a policy and an error %v", err)
			}
			return
		}
		if errs := merged.validate(); len(errs) > 0 {
			t.Fatalf("Merge accepted an invalid policy: %v", errs)
		}
		again, err := Merge(baseline, repo)
		if err != nil || again.Digest() != merged.Digest() {
			t.Fatalf("Merge is not deterministic: %v", err)
		}
		if merged.Review.Required < baseline.Review.Required {
			t.Fatalf("Merge loosened review.required from %d to %d", baseline.Review.Required, merged.Review.Required)
		}
	})
}

// FuzzTicketKeys: whatever a pull request's text, every key found is
// shaped like a Jira key, at most change.MaxTicketKey long, written in one
// of the sources, and found once.
//
//	go test ./internal/policy -run '^$' -fuzz FuzzTicketKeys -fuzztime 60s
func FuzzTicketKeys(f *testing.F) {
	f.Add("PAY-123: fix", "feature/PAY-123_x", "See OPS-7 and CVE-2024-1")
	f.Add("xPAY-1 PAY-2x (PAY-3)", "", "PAY-0 PAY-01 ÄB-1 AB-1\u00a0")
	f.Add(strings.Repeat("A", 300)+"-1", "AB-1", "")
	f.Fuzz(func(t *testing.T, title, branch, body string) {
		p := Defaults()
		keys := TicketKeys(p, change.PullRequest{Title: title, HeadRef: branch, Body: body})
		seen := map[string]bool{}
		for _, k := range keys {
			if !jiraKey.MatchString(k) || jiraKey.FindString(k) != k {
				t.Fatalf("%q is not shaped like a key", k)
			}
			if len(k) > change.MaxTicketKey {
				t.Fatalf("a key of %d bytes", len(k))
			}
			if !strings.Contains(title, k) && !strings.Contains(branch, k) && !strings.Contains(body, k) {
				t.Fatalf("%q is in no source", k)
			}
			if seen[k] {
				t.Fatalf("%q found twice", k)
			}
			seen[k] = true
		}
	})
}
