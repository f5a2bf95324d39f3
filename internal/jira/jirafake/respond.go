package jirafake

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The shapes below follow the examples in Atlassian's Jira Cloud REST
// description (getIssue, getCurrentUser, StatusDetails, IssueTypeDetails)
// and the Jira Service Management approval and group member pages.

// jiraTime is Jira's timestamp format, e.g. 2016-03-16T04:22:37.461+0000.
const jiraTime = "2006-01-02T15:04:05.000-0700"

func (s *Server) base(r *http.Request) string { return "http://" + r.Host }

func avatars(base, kind, id string) map[string]string {
	m := map[string]string{}
	for size, name := range map[string]string{"16x16": "xsmall", "24x24": "small", "32x32": "medium", "48x48": "large"} {
		m[size] = fmt.Sprintf("%s/secure/%savatar?size=%s&%s=%s", base, kind, name, map[string]string{"user": "ownerId", "project": "pid"}[kind], url.QueryEscape(id))
	}
	return m
}

func userJSON(base string, u User) map[string]any {
	m := map[string]any{
		"active":      true,
		"displayName": u.DisplayName,
		"timeZone":    "Etc/UTC",
	}
	if u.AccountID != "" {
		m["accountId"] = u.AccountID
		m["accountType"] = "atlassian"
		m["self"] = base + "/rest/api/2/user?accountId=" + url.QueryEscape(u.AccountID)
		m["avatarUrls"] = avatars(base, "user", u.AccountID)
	}
	if u.Name != "" {
		m["name"] = u.Name
		m["key"] = strings.ToLower(u.Name)
		m["self"] = base + "/rest/api/2/user?username=" + url.QueryEscape(u.Name)
		m["avatarUrls"] = avatars(base, "user", u.Name)
	}
	if u.Email != "" {
		m["emailAddress"] = u.Email
	}
	return m
}

func (s *Server) myself(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	me := s.self
	s.mu.Unlock()
	m := userJSON(s.base(r), me)
	m["groups"] = map[string]any{"size": 1, "items": []any{}}
	m["applicationRoles"] = map[string]any{"size": 1, "items": []any{}}
	writeJSON(w, http.StatusOK, m)
}

func statusCategory(base, status string) map[string]any {
	id, key, name, color := 4, "indeterminate", "In Progress", "yellow"
	switch strings.ToLower(status) {
	case "to do", "open", "backlog", "new":
		id, key, name, color = 2, "new", "To Do", "blue-gray"
	case "done", "closed", "resolved", "approved", "completed", "declined", "canceled":
		id, key, name, color = 3, "done", "Done", "green"
	}
	return map[string]any{"self": fmt.Sprintf("%s/rest/api/2/statuscategory/%d", base, id), "id": id, "key": key, "name": name, "colorName": color}
}

// stableID turns a name into a small number so objects keep their ids.
func stableID(s string) string {
	h := 10000
	for _, c := range s {
		h = (h*31 + int(c)) % 90000
	}
	return strconv.Itoa(10000 + h)
}

func (s *Server) issueJSON(base string, is *issue, fields map[string]bool) map[string]any {
	all := map[string]any{
		"project": map[string]any{
			"self":       base + "/rest/api/2/project/" + is.Project,
			"id":         stableID("project " + is.Project),
			"key":        is.Project,
			"name":       is.Project,
			"avatarUrls": avatars(base, "project", stableID("project "+is.Project)),
			"simplified": false,
		},
		"issuetype": map[string]any{
			"self":           base + "/rest/api/2/issuetype/" + stableID("type "+is.Type),
			"id":             stableID("type " + is.Type),
			"description":    "",
			"iconUrl":        base + "/images/icons/issuetypes/task.svg",
			"name":           is.Type,
			"subtask":        false,
			"avatarId":       10318,
			"hierarchyLevel": 0,
		},
		"status": map[string]any{
			"self":           base + "/rest/api/2/status/" + stableID("status "+is.Status),
			"description":    "",
			"iconUrl":        base + "/images/icons/statuses/generic.png",
			"name":           is.Status,
			"id":             stableID("status " + is.Status),
			"statusCategory": statusCategory(base, is.Status),
		},
		"summary":  is.Summary,
		"reporter": userJSON(base, is.Reporter),
		"created":  is.Created.Format(jiraTime),
	}
	out := map[string]any{}
	for k, v := range all {
		if fields == nil || fields[k] {
			out[k] = v
		}
	}
	id := strconv.Itoa(is.id)
	return map[string]any{
		"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
		"id":     id,
		"self":   base + "/rest/api/2/issue/" + id,
		"key":    strings.ToUpper(is.Key),
		"fields": out,
	}
}

// requested reads the fields parameter; nil means every field.
func requested(q url.Values) map[string]bool {
	var set map[string]bool
	for _, v := range q["fields"] {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			switch {
			case f == "" || strings.HasPrefix(f, "-"):
			case f == "*all" || f == "*navigable":
				return nil
			default:
				if set == nil {
					set = map[string]bool{}
				}
				set[f] = true
			}
		}
	}
	return set
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[strings.ToUpper(r.PathValue("key"))]
	if !ok {
		writeErrors(w, http.StatusNotFound, "Issue does not exist or you do not have permission to see it.")
		return
	}
	writeJSON(w, http.StatusOK, s.issueJSON(s.base(r), is, requested(r.URL.Query())))
}

func jsmDate(t time.Time) map[string]any {
	return map[string]any{
		"iso8601":     t.Format("2006-01-02T15:04:05-0700"),
		"jira":        t.Format(jiraTime),
		"friendly":    t.Format("02/Jan/06 3:04 PM"),
		"epochMillis": t.UnixMilli(),
	}
}

// page reads start/limit (servicedeskapi) or startAt/maxResults (REST).
func (s *Server) page(q url.Values, startName, limitName string) (int, int) {
	start, _ := strconv.Atoi(q.Get(startName))
	limit, _ := strconv.Atoi(q.Get(limitName))
	if start < 0 {
		start = 0
	}
	if limit <= 0 || limit > s.pageSize {
		limit = s.pageSize
	}
	return start, limit
}

func (s *Server) approvals(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	is, ok := s.issues[strings.ToUpper(r.PathValue("key"))]
	if !ok || is.approvals == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{
			"errorMessage":     "The request could not be found.",
			"i18nErrorMessage": map[string]any{"i18nKey": "sd.request.error.not.found", "parameters": []any{}},
		})
		return
	}
	base := s.base(r)
	start, limit := s.page(r.URL.Query(), "start", "limit")
	end := min(start+limit, len(is.approvals))
	values := []any{}
	for i := start; i < end; i++ {
		a := is.approvals[i]
		id := strconv.Itoa(i + 1)
		self := fmt.Sprintf("%s/rest/servicedeskapi/request/%d/approval/%s", base, is.id, id)
		approvers := []any{}
		for _, ap := range a.Approvers {
			u := userJSON(base, ap.User)
			u["_links"] = map[string]any{"self": u["self"]}
			approvers = append(approvers, map[string]any{"approver": u, "approverDecision": ap.Decision})
		}
		v := map[string]any{
			"id":                id,
			"name":              a.Name,
			"finalDecision":     a.Decision,
			"canAnswerApproval": false,
			"approvers":         approvers,
			"createdDate":       jsmDate(is.Created),
			"_links":            map[string]any{"self": self},
		}
		if !a.Completed.IsZero() {
			v["completedDate"] = jsmDate(a.Completed)
		}
		values = append(values, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"_expands":   []any{},
		"size":       len(values),
		"start":      start,
		"limit":      limit,
		"isLastPage": end >= len(is.approvals),
		"_links":     map[string]any{"base": base, "context": "", "self": base + r.URL.RequestURI()},
		"values":     values,
	})
}

func (s *Server) groupMembers(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	name := q.Get("groupname")
	members, ok := s.groups[name]
	if !ok {
		writeErrors(w, http.StatusNotFound, "Specified group does not exist.")
		return
	}
	base := s.base(r)
	start, limit := s.page(q, "startAt", "maxResults")
	end := min(start+limit, len(members))
	values := []any{}
	for i := start; i < end; i++ {
		values = append(values, userJSON(base, members[i]))
	}
	out := map[string]any{
		"self":       base + r.URL.RequestURI(),
		"maxResults": limit,
		"startAt":    start,
		"total":      len(members),
		"isLast":     end >= len(members),
		"values":     values,
	}
	if end < len(members) {
		next := url.Values{"groupname": {name}, "startAt": {strconv.Itoa(end)}, "maxResults": {strconv.Itoa(limit)}}
		out["nextPage"] = base + r.URL.Path + "?" + next.Encode()
	}
	writeJSON(w, http.StatusOK, out)
}
