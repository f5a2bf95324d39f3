// Package arch holds the test that keeps the package graph to the design:
// dependencies point inward, and adapters never import each other.
package arch

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/changegate/changegate/"

// adapters talk to the outside world: storage, GitHub, Jira, HTTP. Only
// cmd (and the demo, which is wiring for `changegate demo`) puts them
// together.
var adapters = []string{
	"internal/blob/fs", "internal/blob/s3",
	"internal/checks",
	"internal/ghapp", "internal/ghfacts",
	"internal/jira",
	"internal/queue",
	"internal/redeliver",
	"internal/setup",
	"internal/store/sqlite", "internal/store/postgres",
	"internal/web",
	"internal/webhook",
}

// core is the vocabulary and the pure decisions: it imports no adapter, and
// change imports nothing of the project at all.
var core = []string{"internal/change", "internal/policy", "internal/evidence", "internal/jobs", "internal/manifest", "internal/store"}

// fakes are test servers: no production package imports them.
var fakes = []string{"internal/ghfake", "internal/jira/jirafake", "internal/testenv", "internal/testenv/chaos", "internal/testenv/chromium", "internal/store/storetest"}

// allowed are edges between adapters not yet removed, each with why: the
// list only shrinks. It is empty.
var allowed = map[string]string{}

// TestImportGraph reads every package's non-test imports and checks the
// rules. A new edge between adapters fails it, naming the edge.
func TestImportGraph(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	graph := packages(t, root)
	if len(graph) < 20 {
		t.Fatalf("found only %d packages under %s", len(graph), root)
	}
	for pkg, imports := range graph {
		for _, imp := range imports {
			edge := pkg + " -> " + imp
			switch {
			case slices.Contains(adapters, pkg) && slices.Contains(adapters, imp) && allowed[edge] == "":
				t.Errorf("%s: an adapter imports another adapter; wire them in cmd", edge)
			case slices.Contains(core, pkg) && slices.Contains(adapters, imp):
				t.Errorf("%s: a core package imports an adapter", edge)
			case pkg == "internal/change":
				t.Errorf("%s: change imports nothing of the project", edge)
			case slices.Contains(fakes, imp) && !slices.Contains(fakes, pkg) && pkg != "internal/demo":
				t.Errorf("%s: a production package imports a test fake", edge)
			}
		}
	}
	for edge := range allowed {
		from, to, _ := strings.Cut(edge, " -> ")
		if !slices.Contains(graph[from], to) {
			t.Errorf("allowed edge %s is gone: remove it from the list", edge)
		}
	}
}

// packages maps each package under root (module-relative) to the module
// packages it imports, tests excluded.
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	graph := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files, or only tests
		}
		rel, _ := filepath.Rel(root, path)
		var own []string
		for _, imp := range p.Imports {
			if rest, ok := strings.CutPrefix(imp, module); ok {
				own = append(own, rest)
			}
		}
		graph[filepath.ToSlash(rel)] = own
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}
