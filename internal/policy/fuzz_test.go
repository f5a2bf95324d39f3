package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
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
