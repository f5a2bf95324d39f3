package webhook

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// parsePayload reads the fields translation needs from a webhook body in
// one pass, without decoding the rest: a pull_request payload is 28 KB, of
// which translation reads a dozen values, and a full json.Unmarshal of it
// was a third of intake's CPU.
//
// It decodes what encoding/json would into payload, with the same errors
// for a body that is not JSON or a field of the wrong type. Of repeated
// keys the last wins, as in encoding/json, except that a repeated object
// replaces the first where encoding/json merges the two; and keys match
// exactly, where encoding/json would also take one that differs in case.
// GitHub sends neither. FuzzParsePayload holds it to json.Unmarshal.
func parsePayload(body []byte) (payload, error) {
	var p payload
	if !gjson.ValidBytes(body) {
		return p, fmt.Errorf("%w: not valid JSON", ErrMalformed)
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return p, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	r := reader{}
	r.each(root, func(key string, v gjson.Result) { r.top(&p, key, v) })
	if r.err != nil {
		return payload{}, fmt.Errorf("%w: %v", ErrMalformed, r.err)
	}
	return p, nil
}

// top reads one top-level field.
func (r *reader) top(p *payload, key string, v gjson.Result) {
	switch key {
	case "action":
		p.Action = r.strPtr(v, key)
	case "installation":
		p.Installation = r.installation(v)
	case "repository":
		p.Repository = r.repository(v)
	case "repositories", "repositories_added", "repositories_removed":
		*repoList(p, key) = r.repos(v, key)
	case "pull_request":
		p.PullRequest = r.pullRequest(v)
	case "number":
		p.Number = r.int(v, key)
	case "check_run":
		p.CheckRun = r.checkRun(v)
	case "check_suite":
		p.CheckSuite = r.checkSuite(v)
	case "issue":
		p.Issue = r.issue(v)
	case "comment":
		p.Comment = []byte(v.Raw)
	case "workflow_run":
		p.WorkflowRun = r.headOnly(v, key)
	case "deployment":
		p.Deployment = r.deployment(v)
	case "merge_group":
		p.MergeGroup = r.mergeGroup(v)
	case "deployment_status":
		p.DeploymentStatus = r.deploymentStatus(v)
	case "pusher":
		p.Pusher = r.pusher(v)
	case "commits":
		p.Commits = r.commits(v)
	case "deleted":
		p.Deleted = r.bool(v, key)
	case "team":
		p.Team = objectOf(r, v, key, func(t *teamPayload, key string, f gjson.Result) {
			if key == "slug" {
				t.Slug = r.str(f, "team.slug")
			}
		})
	case "organization":
		p.Organization = r.account(v, key)
	default:
		r.topString(p, key, v)
	}
}

// topString reads the top-level fields that are plain strings.
func (r *reader) topString(p *payload, key string, v gjson.Result) {
	var dst *string
	switch key {
	case "state":
		dst = &p.State
	case "context":
		dst = &p.Context
	case "environment":
		dst = &p.Environment
	case "deployment_callback_url":
		dst = &p.CallbackURL
	case "ref":
		dst = &p.Ref
	case "before":
		dst = &p.Before
	case "sha":
		dst = &p.SHA
	case "after":
		dst = &p.After
	default:
		return
	}
	*dst = r.str(v, key)
}

func repoList(p *payload, key string) *[]repo {
	switch key {
	case "repositories_added":
		return &p.RepositoriesAdded
	case "repositories_removed":
		return &p.RepositoriesRemoved
	}
	return &p.Repositories
}

func (r *reader) installation(v gjson.Result) *installationPayload {
	return objectOf(r, v, "installation", func(in *installationPayload, key string, f gjson.Result) {
		switch key {
		case "id":
			in.ID = r.int64(f, "installation.id")
		case "account":
			in.Account = r.account(f, "installation.account")
		case "repository_selection":
			in.RepositorySelection = r.str(f, "installation.repository_selection")
		case "suspended_at":
			in.SuspendedAt = r.strPtr(f, "installation.suspended_at")
		}
	})
}

// account reads a user or organization object at path.
func (r *reader) account(v gjson.Result, path string) *accountPayload {
	return objectOf(r, v, path, func(a *accountPayload, key string, g gjson.Result) {
		switch key {
		case "login":
			a.Login = r.str(g, path+".login")
		case "type":
			a.Type = r.str(g, path+".type")
		}
	})
}

func (r *reader) repository(v gjson.Result) *repositoryPayload {
	return objectOf(r, v, "repository", func(out *repositoryPayload, key string, f gjson.Result) {
		switch key {
		case "full_name":
			out.FullName = r.str(f, "repository.full_name")
		case "default_branch":
			out.DefaultBranch = r.str(f, "repository.default_branch")
		}
	})
}

func (r *reader) repos(v gjson.Result, path string) []repo {
	return listOf(r, v, path, func(out *repo, key string, f gjson.Result) {
		switch key {
		case "id":
			out.ID = r.int64(f, path+".id")
		case "full_name":
			out.FullName = r.str(f, path+".full_name")
		case "private":
			out.Private = r.bool(f, path+".private")
		}
	})
}

func (r *reader) pullRequest(v gjson.Result) *pullRequestPayload {
	return objectOf(r, v, "pull_request", func(out *pullRequestPayload, key string, f gjson.Result) {
		switch key {
		case "number":
			out.Number = r.int(f, "pull_request.number")
		case "head":
			out.Head.SHA = ""
			if r.object(f, "pull_request.head") {
				r.each(f, func(key string, g gjson.Result) {
					if key == "sha" {
						out.Head.SHA = r.str(g, "pull_request.head.sha")
					}
				})
			}
		}
	})
}

// headOnly reads a workflow run's name and head commit.
func (r *reader) headOnly(v gjson.Result, path string) *headPayload {
	return objectOf(r, v, path, func(out *headPayload, key string, f gjson.Result) {
		switch key {
		case "head_sha":
			out.HeadSHA = r.str(f, path+".head_sha")
		case "name":
			out.Name = r.str(f, path+".name")
		}
	})
}

func (r *reader) checkRun(v gjson.Result) *checkRunPayload {
	return objectOf(r, v, "check_run", func(out *checkRunPayload, key string, f gjson.Result) {
		switch key {
		case "name":
			out.Name = r.str(f, "check_run.name")
		case "head_sha":
			out.HeadSHA = r.str(f, "check_run.head_sha")
		case "app":
			out.App = r.app(f, "check_run.app")
		case "pull_requests":
			out.PullRequests = r.prRefs(f, "check_run.pull_requests")
		}
	})
}

func (r *reader) checkSuite(v gjson.Result) *checkSuitePayload {
	return objectOf(r, v, "check_suite", func(out *checkSuitePayload, key string, f gjson.Result) {
		switch key {
		case "head_sha":
			out.HeadSHA = r.str(f, "check_suite.head_sha")
		case "app":
			out.App = r.app(f, "check_suite.app")
		case "pull_requests":
			out.PullRequests = r.prRefs(f, "check_suite.pull_requests")
		}
	})
}

func (r *reader) app(v gjson.Result, path string) *app {
	return objectOf(r, v, path, func(out *app, key string, f gjson.Result) {
		if key == "id" {
			out.ID = r.int64(f, path+".id")
		}
	})
}

func (r *reader) prRefs(v gjson.Result, path string) []prRef {
	return listOf(r, v, path, func(out *prRef, key string, f gjson.Result) {
		if key == "number" {
			out.Number = r.int(f, path+".number")
		}
	})
}

func (r *reader) issue(v gjson.Result) *issuePayload {
	return objectOf(r, v, "issue", func(out *issuePayload, key string, f gjson.Result) {
		switch key {
		case "number":
			out.Number = r.int(f, "issue.number")
		case "pull_request":
			out.PullRequest = nil
			if r.object(f, "issue.pull_request") {
				out.PullRequest = &struct{}{}
			}
		}
	})
}

func (r *reader) deployment(v gjson.Result) *deploymentPayload {
	return objectOf(r, v, "deployment", func(out *deploymentPayload, key string, f gjson.Result) {
		switch key {
		case "id":
			out.ID = r.int64(f, "deployment.id")
		case "sha":
			out.SHA = r.str(f, "deployment.sha")
		case "ref":
			out.Ref = r.str(f, "deployment.ref")
		case "environment":
			out.Environment = r.str(f, "deployment.environment")
		}
	})
}

func (r *reader) mergeGroup(v gjson.Result) *mergeGroupPayload {
	return objectOf(r, v, "merge_group", func(out *mergeGroupPayload, key string, f gjson.Result) {
		switch key {
		case "head_sha":
			out.HeadSHA = r.str(f, "merge_group.head_sha")
		case "head_ref":
			out.HeadRef = r.str(f, "merge_group.head_ref")
		case "base_sha":
			out.BaseSHA = r.str(f, "merge_group.base_sha")
		case "base_ref":
			out.BaseRef = r.str(f, "merge_group.base_ref")
		}
	})
}

func (r *reader) deploymentStatus(v gjson.Result) *deploymentStatusPayload {
	return objectOf(r, v, "deployment_status", func(out *deploymentStatusPayload, key string, f gjson.Result) {
		if key == "state" {
			out.State = r.str(f, "deployment_status.state")
		}
	})
}

func (r *reader) pusher(v gjson.Result) *pusherPayload {
	return objectOf(r, v, "pusher", func(out *pusherPayload, key string, f gjson.Result) {
		if key == "name" {
			out.Name = r.str(f, "pusher.name")
		}
	})
}

func (r *reader) commits(v gjson.Result) []commitPayload {
	return listOf(r, v, "commits", func(out *commitPayload, key string, f gjson.Result) {
		if key == "id" {
			out.ID = r.str(f, "commits.id")
		}
	})
}

// objectOf reads an object into a new T, field by field with set; nil when
// the value is null or absent.
func objectOf[T any](r *reader, v gjson.Result, path string, set func(out *T, key string, f gjson.Result)) *T {
	if !r.object(v, path) {
		return nil
	}
	out := new(T)
	r.each(v, func(key string, f gjson.Result) { set(out, key, f) })
	return out
}

// listOf reads an array of objects, each with set; a null element is a
// zero T, as encoding/json leaves it.
func listOf[T any](r *reader, v gjson.Result, path string, set func(out *T, key string, f gjson.Result)) []T {
	if !r.array(v, path) {
		return nil
	}
	out := []T{}
	v.ForEach(func(_, e gjson.Result) bool {
		var x T
		if e.Type != gjson.Null && r.object(e, path+"[]") {
			r.each(e, func(key string, f gjson.Result) { set(&x, key, f) })
		}
		out = append(out, x)
		return true
	})
	return out
}

// reader reads typed values and keeps the first type error, as
// json.Unmarshal reports the first.
type reader struct{ err error }

func (r *reader) fail(path, want string, v gjson.Result) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: want %s, got %s", path, want, v.Type)
	}
}

// each calls fn for each field of an object, in order, so that of two
// equal keys the last one wins, as in encoding/json.
func (r *reader) each(v gjson.Result, fn func(key string, v gjson.Result)) {
	v.ForEach(func(k, f gjson.Result) bool {
		fn(k.Str, f)
		return true
	})
}

// object reports whether v is an object. null and absence are not, and
// are no error; any other type is.
func (r *reader) object(v gjson.Result, path string) bool {
	switch {
	case v.IsObject():
		return true
	case v.Type == gjson.Null:
		return false
	}
	r.fail(path, "an object", v)
	return false
}

func (r *reader) array(v gjson.Result, path string) bool {
	switch {
	case v.IsArray():
		return true
	case v.Type == gjson.Null:
		return false
	}
	r.fail(path, "an array", v)
	return false
}

func (r *reader) str(v gjson.Result, path string) string {
	switch v.Type {
	case gjson.String:
		return validUTF8(v.Str)
	case gjson.Null:
		return ""
	}
	r.fail(path, "a string", v)
	return ""
}

func (r *reader) strPtr(v gjson.Result, path string) *string {
	if v.Type == gjson.Null {
		return nil
	}
	s := r.str(v, path)
	return &s
}

func (r *reader) bool(v gjson.Result, path string) bool {
	switch v.Type {
	case gjson.True:
		return true
	case gjson.False, gjson.Null:
		return false
	}
	r.fail(path, "a boolean", v)
	return false
}

func (r *reader) int64(v gjson.Result, path string) int64 {
	return r.integer(v, path, 64)
}

func (r *reader) int(v gjson.Result, path string) int {
	return int(r.integer(v, path, strconv.IntSize))
}

// integer parses a JSON number that must be an integer of bits bits, as
// json.Unmarshal does into an int: 1.0 and 1e3 are errors.
func (r *reader) integer(v gjson.Result, path string, bits int) int64 {
	switch v.Type {
	case gjson.Null:
		return 0
	case gjson.Number:
		n, err := strconv.ParseInt(v.Raw, 10, bits)
		if err == nil {
			return n
		}
	}
	r.fail(path, "an integer", v)
	return 0
}

// validUTF8 replaces each byte that is not UTF-8 with U+FFFD, as
// encoding/json does when it decodes a string.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for len(s) > 0 {
		c, size := utf8.DecodeRuneInString(s)
		if c == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[:size]...)
		}
		s = s[size:]
	}
	return string(b)
}
