package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what Parse reads: a real policy is a few hundred bytes,
// and the file comes from a repository anyone with push access controls.
const maxFileSize = 1 << 20

// Limits on values.
const (
	maxRequiredReviews = 10
	maxWindow          = 30 * 24 * time.Hour
	// ownCheck is changegate's own check run: a staging pattern matching it
	// would let the gate satisfy itself.
	ownCheck = "changegate"
)

// Parse reads a policy file strictly: unknown keys, wrong types and invalid
// values are errors, all reported at once (errors.Join of *Error), each
// placed at name:line:column. Missing keys take Defaults, except version,
// which must be written so a future format is never misread as this one.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > maxFileSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("policy file is %d bytes; the limit is %d", len(data), maxFileSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Msg: `empty policy file; it must at least say "version: 1"`}
		}
		return nil, syntaxError(name, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(name, err)
	default:
		return nil, &Error{File: name, Line: extra.Line, Column: extra.Column,
			Msg: "a second YAML document; a policy file holds exactly one"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || isNull(doc.Content[0]) {
		return nil, &Error{File: name, Line: doc.Line, Msg: `empty policy file; it must at least say "version: 1"`}
	}
	root := doc.Content[0]

	p := Defaults()
	p.source, p.fallback = name, false // a file is a baseline, not a fallback
	p.pos = map[string]position{}
	d := &decoder{file: name, pos: p.pos}
	d.decode(root, reflect.ValueOf(p).Elem(), "")
	errs := d.errs
	if _, ok := p.pos["version"]; !ok && root.Kind == yaml.MappingNode {
		errs = append(errs, &Error{File: name, Line: root.Line, Column: root.Column,
			Msg: `version: missing; the file must say "version: 1"`})
	}
	errs = append(errs, p.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// CheckFile validates a policy file, for `changegate policy check FILE`.
func CheckFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	_, err = Parse(path, data)
	return err
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError places yaml.v3's "yaml: line N: …" messages.
func syntaxError(name string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		// An unclosed flow collection is reported at the 0-based line of
		// its opening bracket (go-yaml #205): report the bracket's line.
		if strings.HasPrefix(m[2], "did not find expected ',' or ") {
			line++
		}
		return &Error{File: name, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: name, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

var durationType = reflect.TypeFor[time.Duration]()

// decoder walks the YAML node tree against the Policy struct's yaml tags.
// yaml.v3's own KnownFields decoding stops at the first error and names
// neither the column nor the key path; walking the nodes gives both, and
// lets every problem be reported at once.
type decoder struct {
	file string
	pos  map[string]position
	errs []error
}

func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if path != "" {
		d.pos[path] = position{n.Line, n.Column}
	}
	if isNull(n) {
		d.fail(n, "%s: no value; give one, or remove the key to take the default", path)
		return
	}
	switch {
	case v.Type() == durationType:
		if !d.scalar(n, "!!str", path, `a duration such as "48h"`) {
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			d.fail(n, "%s: %q is not a duration; write it like 48h or 90m", path, n.Value)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, "%s: expected a list, got %s", path, describe(n))
			return
		}
		out := make([]string, 0, len(n.Content))
		for i, item := range n.Content {
			itemPath := fmt.Sprintf("%s[%d]", path, i)
			item = resolve(item)
			d.pos[itemPath] = position{item.Line, item.Column}
			if d.scalar(item, "!!str", itemPath, "a string") {
				out = append(out, item.Value)
			}
		}
		v.Set(reflect.ValueOf(out))
	case v.Kind() == reflect.String:
		if d.scalar(n, "!!str", path, "a string") {
			v.SetString(n.Value)
		}
	case v.Kind() == reflect.Int:
		if !d.scalar(n, "!!int", path, "an integer") {
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.fail(n, "%s: %s is not a small integer", path, n.Value)
			return
		}
		v.SetInt(i)
	case v.Kind() == reflect.Bool:
		if !d.scalar(n, "!!bool", path, "true or false") {
			return
		}
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			d.fail(n, "%s: expected true or false, got %s", path, n.Value)
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("policy: no decoder for %s", v.Type())) // a new field type needs a case here
	}
}

// scalar checks that n is a plain scalar of the given resolved tag.
func (d *decoder) scalar(n *yaml.Node, tag, path, want string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
		d.fail(n, "%s: expected %s, got %s", path, want, describe(n))
		return false
	}
	return true
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		where := path
		if where == "" {
			where = "the policy"
		}
		d.fail(n, "%s: expected a mapping of keys, got %s", where, describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, "%s: keys must be plain words, got %s", orTop(path), describe(k))
			continue
		}
		full := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", full)
			if s := suggest(k.Value, v.Type()); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", join(path, s))
			}
			d.fail(k, "%s", msg)
			continue
		}
		if seen[k.Value] {
			d.fail(k, "%s: key given twice", full)
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), full)
	}
}

// yamlFields maps a struct's yaml keys to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		if key := yamlKey(t.Field(i)); key != "" {
			out[key] = i
		}
	}
	return out
}

func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if key == "-" {
		return ""
	}
	return key
}

// suggest returns the known key closest to a misspelt one, if close.
func suggest(key string, t reflect.Type) string {
	best, bestDist := "", 3
	for k := range yamlFields(t) {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist || dist == bestDist && k < best {
			best, bestDist = k, dist
		}
	}
	if bestDist > 2 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// resolve follows aliases. Only a fixed-depth struct is decoded, so an
// alias can never expand into more than the list it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "no value"
		case "!!str":
			return strconv.Quote(n.Value)
		default:
			return n.Value
		}
	case yaml.AliasNode:
		return "an unresolved alias"
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the policy"
	}
	return path
}

var (
	jiraProject = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	teamName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)
	loginName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,38}(\[bot\])?$`)
)

// validate checks values (types were checked while decoding), placing each
// problem where the key or item was written.
func (p *Policy) validate() []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, p.errorAt(path, path+": "+fmt.Sprintf(format, args...)))
	}
	items := func(path string, list []string, check func(string) string) {
		for i, s := range list {
			if msg := check(s); msg != "" {
				bad(fmt.Sprintf("%s[%d]", path, i), "%s", msg)
			}
		}
	}
	glob := func(s string) string {
		if err := validGlob(s); err != nil {
			return fmt.Sprintf("%q: %v", s, err)
		}
		return ""
	}
	nonEmpty := func(s string) string {
		if strings.TrimSpace(s) == "" {
			return "empty value"
		}
		return ""
	}

	if p.Version != Version {
		bad("version", "%d is not supported; this changegate reads version %d", p.Version, Version)
	}

	items("production.branches", p.Production.Branches, glob)
	items("production.paths", p.Production.Paths, glob)
	items("production.environments", p.Production.Environments, glob)

	if len(p.Ticket.Sources) == 0 {
		bad("ticket.sources", "empty; list at least one of %s", orList(Sources))
	}
	items("ticket.sources", p.Ticket.Sources, func(s string) string {
		if !slices.Contains(Sources, s) {
			return fmt.Sprintf("%q is not a source; use %s", s, orList(Sources))
		}
		return ""
	})
	items("ticket.projects", p.Ticket.Projects, func(s string) string {
		if !jiraProject.MatchString(s) {
			return fmt.Sprintf("%q is not a Jira project key (2 or more of A-Z, 0-9 and _, starting with a letter, such as PAY)", s)
		}
		return ""
	})
	items("ticket.issue_types", p.Ticket.IssueTypes, nonEmpty)
	items("ticket.statuses", p.Ticket.Statuses, nonEmpty)

	items("review.ignore", p.Review.Ignore, func(s string) string {
		if !loginName.MatchString(s) {
			return fmt.Sprintf("%q is not a GitHub login (such as alice or renovate[bot])", s)
		}
		return ""
	})
	if p.Review.Required < 0 || p.Review.Required > maxRequiredReviews {
		bad("review.required", "%d is out of range 0..%d", p.Review.Required, maxRequiredReviews)
	}

	if len(p.Staging.Environments) == 0 && len(p.Staging.Checks) == 0 {
		bad("staging", "no environments and no checks: nothing could ever show a staging run")
	}
	items("staging.environments", p.Staging.Environments, glob)
	items("staging.checks", p.Staging.Checks, func(s string) string {
		if msg := glob(s); msg != "" {
			return msg
		}
		if matchGlob(s, ownCheck) {
			return fmt.Sprintf("%q matches changegate's own check run; the gate cannot be its own staging evidence", s)
		}
		return ""
	})

	items("manager.teams", p.Manager.Teams, func(s string) string {
		if !teamName.MatchString(s) {
			return fmt.Sprintf("%q is not org/team-slug", s)
		}
		return ""
	})
	if p.Manager.JiraApproval && strings.TrimSpace(p.Manager.JiraGroup) == "" {
		bad("manager.jira_approval", "true needs manager.jira_group: the Jira group whose approvals count")
	}

	if strings.TrimSpace(p.Emergency.Label) == "" {
		bad("emergency.label", "empty; name the label that marks an emergency change")
	} else if len(p.Emergency.Label) > 50 {
		bad("emergency.label", "longer than GitHub's 50-character label limit")
	}
	if p.Emergency.Window <= 0 || p.Emergency.Window > maxWindow {
		bad("emergency.window", "%s is out of range; give a duration above 0 and at most %s", formatWindow(p.Emergency.Window), formatWindow(maxWindow))
	}

	items("exempt.authors", p.Exempt.Authors, func(s string) string {
		if !loginName.MatchString(s) {
			return fmt.Sprintf("%q is not a GitHub login (such as alice or dependabot[bot])", s)
		}
		return ""
	})
	items("exempt.paths", p.Exempt.Paths, glob)
	items("freeze", p.Freeze, func(s string) string {
		if _, err := parseWindow(s); err != nil {
			return err.Error()
		}
		return ""
	})
	return errs
}
