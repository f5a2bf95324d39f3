package ghfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/changegate/changegate/internal/testenv"
)

// multiSegment holds the patterns of the parameters the description marks
// x-multi-segment, for when they end a template: file paths, git refs such
// as heads/feature/x, and compare's basehead, which must be BASE...HEAD.
var multiSegment = map[string]string{
	"path":     `.+?`,
	"ref":      `.+?`,
	"basehead": `.+?\.\.\..+?`,
}

// loadSpec parses the shared OpenAPI description once per process; it
// returns nil when the shared folder is absent.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	dir := testenv.SharedTestdata()
	if dir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "github-openapi-subset.json"))
	if err != nil {
		return nil, fmt.Errorf("read openapi: %w", err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi: %w", err)
	}
	sp := &spec{}
	for path, item := range doc.Paths {
		for method := range item {
			switch m := strings.ToUpper(method); m {
			case "GET", "POST", "PUT", "PATCH", "DELETE":
				sp.add(m, path)
			}
		}
	}
	return sp, nil
})

var logSkipOnce sync.Once

// spec is the set of operations GitHub has, by method and path template.
type spec struct{ ops []operation }

type operation struct {
	method   string
	template string
	re       *regexp.Regexp
	literal  int // literal characters: the most specific template wins
}

func (sp *spec) add(method, template string) {
	sp.ops = append(sp.ops, operation{
		method:   method,
		template: template,
		re:       compileTemplate(template),
		literal:  len(paramRE.ReplaceAllString(template, "")),
	})
}

// route returns the template of the operation that method and the escaped
// path name, and whether GitHub has one. With no spec every call is known.
func (sp *spec) route(method, path string) (string, bool) {
	if sp == nil {
		return "", true
	}
	if method == http.MethodHead {
		method = http.MethodGet
	}
	best := -1
	for i, op := range sp.ops {
		if op.method == method && op.re.MatchString(path) && (best < 0 || op.literal > sp.ops[best].literal) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	return sp.ops[best].template, true
}

var paramRE = regexp.MustCompile(`\{[^}]+\}`)

// compileTemplate turns an OpenAPI path template into a regexp over the
// escaped request path. A parameter matches one non-empty segment, or
// several when multi-segment and in the last segment.
func compileTemplate(template string) *regexp.Regexp {
	lastSeg := strings.LastIndex(template, "/")
	var b strings.Builder
	b.WriteString("^")
	prev := 0
	for _, loc := range paramRE.FindAllStringIndex(template, -1) {
		b.WriteString(regexp.QuoteMeta(template[prev:loc[0]]))
		name := template[loc[0]+1 : loc[1]-1]
		if pat, ok := multiSegment[name]; ok && loc[0] > lastSeg {
			b.WriteString(pat)
		} else {
			b.WriteString(`[^/]+?`)
		}
		prev = loc[1]
	}
	b.WriteString(regexp.QuoteMeta(template[prev:]))
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
