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
	p.set = keysOf(p.pos)
	return p, nil
}

// keysOf is the set of keys a file wrote.
func keysOf(pos map[string]position) map[string]bool {
	set := make(map[string]bool, len(pos))
	for k := range pos {
		set[k] = true
	}
	return set
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
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		d.mappings(n, v, path)
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

// mappings decodes a list of mappings, such as staging.promotion, each
// item at "path[i]".
func (d *decoder) mappings(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "%s: expected a list, got %s", path, describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(out)
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
	v := &validator{p: p}
	if p.Version != Version {
		v.bad("version", "%d is not supported; this changegate reads version %d", p.Version, Version)
	}
	v.production()
	v.ticket()
	v.review()
	v.staging()
	v.promotion()
	v.manager()
	v.emergency()
	v.exempt()
	v.freeze()
	return v.errs
}

// validator collects the problems validate finds, one section at a time.
type validator struct {
	p    *Policy
	errs []error
}

// bad records a problem with the key or item at path.
func (v *validator) bad(path, format string, args ...any) {
	v.errs = append(v.errs, v.p.errorAt(path, path+": "+fmt.Sprintf(format, args...)))
}

// items checks each item of a list, placing a problem at the item.
func (v *validator) items(path string, list []string, check func(string) string) {
	for i, s := range list {
		if msg := check(s); msg != "" {
			v.bad(fmt.Sprintf("%s[%d]", path, i), "%s", msg)
		}
	}
}

// Item checks for validator.items: each returns "" or the problem.

func globItem(s string) string {
	if err := validGlob(s); err != nil {
		return fmt.Sprintf("%q: %v", s, err)
	}
	return ""
}

func nonEmptyItem(s string) string {
	if strings.TrimSpace(s) == "" {
		return "empty value"
	}
	return ""
}

// loginItem returns a check that s is a GitHub login; example names one.
func loginItem(example string) func(string) string {
	return func(s string) string {
		if !loginName.MatchString(s) {
			return fmt.Sprintf("%q is not a GitHub login (such as %s)", s, example)
		}
		return ""
	}
}

func (v *validator) production() {
	v.items("production.branches", v.p.Production.Branches, globItem)
	v.items("production.paths", v.p.Production.Paths, globItem)
	v.items("production.environments", v.p.Production.Environments, globItem)
}

func (v *validator) ticket() {
	t := v.p.Ticket
	if len(t.Sources) == 0 {
		v.bad("ticket.sources", "empty; list at least one of %s", orList(Sources))
	}
	v.items("ticket.sources", t.Sources, func(s string) string {
		if !slices.Contains(Sources, s) {
			return fmt.Sprintf("%q is not a source; use %s", s, orList(Sources))
		}
		return ""
	})
	v.items("ticket.projects", t.Projects, func(s string) string {
		if !jiraProject.MatchString(s) {
			return fmt.Sprintf("%q is not a Jira project key (2 or more of A-Z, 0-9 and _, starting with a letter, such as PAY)", s)
		}
		return ""
	})
	v.items("ticket.issue_types", t.IssueTypes, nonEmptyItem)
	v.items("ticket.statuses", t.Statuses, nonEmptyItem)
}

func (v *validator) review() {
	r := v.p.Review
	v.items("review.ignore", r.Ignore, loginItem("alice or renovate[bot]"))
	if r.Required < 0 || r.Required > maxRequiredReviews {
		v.bad("review.required", "%d is out of range 0..%d", r.Required, maxRequiredReviews)
	}
}

func (v *validator) staging() {
	st := v.p.Staging
	if len(st.Environments) == 0 && len(st.Checks) == 0 {
		v.bad("staging", "no environments and no checks: nothing could ever show a staging run")
	}
	v.items("staging.environments", st.Environments, globItem)
	v.items("staging.checks", st.Checks, func(s string) string {
		if msg := globItem(s); msg != "" {
			return msg
		}
		if matchGlob(s, ownCheck) {
			return fmt.Sprintf("%q matches changegate's own check run; the gate cannot be its own staging evidence", s)
		}
		return ""
	})
}

// promotion: each pair names two distinct path globs; the production one
// must be a production path when the policy lists them.
func (v *validator) promotion() {
	for i, pr := range v.p.Staging.Promotion {
		at := fmt.Sprintf("staging.promotion[%d]", i)
		for _, side := range []struct{ key, glob string }{{"production", pr.Production}, {"staging", pr.Staging}} {
			switch msg := globItem(side.glob); {
			case strings.TrimSpace(side.glob) == "":
				v.bad(at, "%s: missing; name the path glob, e.g. overlays/%s/**", side.key, side.key)
			case msg != "":
				v.bad(at+"."+side.key, "%s", msg)
			}
		}
		if pr.Production != "" && pr.Production == pr.Staging {
			v.bad(at+".staging", "the same path as production: an artifact would be its own staging evidence")
		}
		if pr.Soak < 0 {
			v.bad(at+".soak", "a negative soak")
		}
		v.items(at+".values", pr.Values, func(s string) string {
			if !valuesPath.MatchString(s) {
				return fmt.Sprintf("%q is not a dotted YAML path such as image or app.image", s)
			}
			return ""
		})
	}
}

var valuesPath = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

func (v *validator) manager() {
	mg := v.p.Manager
	v.items("manager.teams", mg.Teams, func(s string) string {
		if !teamName.MatchString(s) {
			return fmt.Sprintf("%q is not org/team-slug", s)
		}
		return ""
	})
	if mg.JiraApproval && strings.TrimSpace(mg.JiraGroup) == "" {
		v.bad("manager.jira_approval", "true needs manager.jira_group: the Jira group whose approvals count")
	}
}

func (v *validator) emergency() {
	em := v.p.Emergency
	if strings.TrimSpace(em.Label) == "" {
		v.bad("emergency.label", "empty; name the label that marks an emergency change")
	} else if len(em.Label) > 50 {
		v.bad("emergency.label", "longer than GitHub's 50-character label limit")
	}
	if em.Window <= 0 || em.Window > maxWindow {
		v.bad("emergency.window", "%s is out of range; give a duration above 0 and at most %s", formatWindow(em.Window), formatWindow(maxWindow))
	}
}

func (v *validator) exempt() {
	v.items("exempt.authors", v.p.Exempt.Authors, loginItem("alice or dependabot[bot]"))
	v.items("exempt.paths", v.p.Exempt.Paths, globItem)
}

func (v *validator) freeze() {
	v.items("freeze", v.p.Freeze, func(s string) string {
		if _, err := parseWindow(s); err != nil {
			return err.Error()
		}
		return ""
	})
}
