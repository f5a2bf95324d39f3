package jira

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	gojira "github.com/andygrunwald/go-jira"

	"github.com/changegate/changegate/internal/change"
)

// LookupOptions says what to read beyond the issue itself.
type LookupOptions struct {
	// Approvals reads Jira Service Management approvals of the issue.
	Approvals bool
	// ApprovalGroup, when set with Approvals, marks approvals given by a
	// member of this Jira group (Approval.Groups).
	ApprovalGroup string
}

// issueKey is the shape of a Jira issue key (project keys start with a
// letter and have at least two characters), the same rule intake uses.
var issueKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[1-9][0-9]*$`)

// validKey says whether k is an issue key of at most change.MaxTicketKey
// characters.
func validKey(k string) bool {
	return len(k) <= change.MaxTicketKey && issueKey.MatchString(k)
}

// shortQuote quotes text for a message, cut to 64 bytes: a hostile key
// is never repeated whole.
func shortQuote(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:64]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// issueFields are the only fields we ask for: fewer bytes, and rich-text
// fields (which differ between REST v2 and v3) never reach the decoder.
const issueFields = "project,issuetype,status,summary,reporter,created"

// Pages are bounded so a misbehaving server cannot loop us forever.
const (
	pageSize = 50
	maxPages = 200
)

// Lookup reads one issue live. The result is found, not_found (Jira
// answered 404 and our credentials still work) or unreachable (anything
// else that leaves the question open: 401, 403, 429, 5xx, timeouts,
// connection errors, malformed bodies). It never returns not_found because
// Jira was down or locked us out.
//
// Ticket.Key is the key Jira answers with, which differs from the key asked
// for when the issue was moved to another project; Ticket.Project comes from
// the issue, not from the key's prefix.
//
// People (Reporter, Approval.Approvers) are display names, falling back to
// the account ID (Cloud) or user name (Data Center) when Jira hides the
// name. Group membership is decided on account IDs and user names, never
// on display names.
func (c *Client) Lookup(ctx context.Context, key string, opts LookupOptions) change.TicketLookup {
	out := change.TicketLookup{Key: key}
	want := strings.ToUpper(strings.TrimSpace(key))
	if !validKey(want) {
		out.Result = change.LookupNotFound
		out.Error = fmt.Sprintf("%s is not a Jira issue key", shortQuote(key))
		return out
	}
	fail := func(msg string) change.TicketLookup {
		out.Result, out.Error = change.LookupUnreachable, msg
		c.log.DebugContext(ctx, "jira lookup unreachable", slog.String("jira_key", key), slog.String("error", msg))
		return out
	}

	issue, resp, err := c.jc.Issue.GetWithContext(ctx, want, &gojira.GetQueryOptions{Fields: issueFields})
	status := 0
	var header http.Header
	if resp != nil {
		status, header = resp.StatusCode, resp.Header
	}
	switch {
	case status == http.StatusNotFound:
		// Cloud also answers 404 when our credentials stopped working (an
		// expired API token, say): ask who we are before saying "missing".
		var me myself
		st, h, err := c.getJSON(ctx, "rest/api/2/myself", &me)
		if err := c.checkMyself(st, h, err, me); err != nil {
			return fail(fmt.Sprintf("Jira answered 404 for %s and then failed the credentials check: %v", want, err))
		}
		out.Result = change.LookupNotFound
		out.Error = fmt.Sprintf("Jira has no issue %s, or changegate's Jira account may not browse it", want)
		return out
	case err != nil || status < 200 || status >= 300:
		return fail(c.problem(status, header, err))
	case issue == nil || issue.Key == "" || issue.Fields == nil:
		return fail("Jira sent a malformed response: no issue key or fields")
	}

	f := issue.Fields
	t := &change.Ticket{
		Key:      issue.Key,
		URL:      c.base + "/browse/" + url.PathEscape(issue.Key),
		Project:  f.Project.Key,
		Type:     f.Type.Name,
		Summary:  f.Summary,
		Reporter: person(f.Reporter),
		Created:  time.Time(f.Created).UTC(),
	}
	if f.Status != nil {
		t.Status = f.Status.Name
	}
	if opts.Approvals {
		approvals, msg := c.approvals(ctx, issue.Key, opts.ApprovalGroup)
		if msg != "" {
			return fail(msg)
		}
		t.Approvals = approvals
	}
	out.Result, out.Ticket = change.LookupFound, t
	return out
}

func person(u *gojira.User) string {
	if u == nil {
		return ""
	}
	return firstOf(u.DisplayName, u.AccountID, u.Name)
}

// jsmUser is an approver or a group member. Cloud identifies people by
// accountId; Data Center by name (and key).
type jsmUser struct {
	AccountID   string `json:"accountId"`
	Name        string `json:"name"`
	Key         string `json:"key"`
	DisplayName string `json:"displayName"`
}

func (u jsmUser) ids() []string {
	var ids []string
	if u.AccountID != "" {
		ids = append(ids, "account:"+u.AccountID)
	}
	if u.Name != "" {
		ids = append(ids, "name:"+u.Name)
	}
	if u.Key != "" {
		ids = append(ids, "key:"+u.Key)
	}
	return ids
}

type jsmDate struct {
	ISO8601     string `json:"iso8601"`
	EpochMillis int64  `json:"epochMillis"`
}

func (d *jsmDate) time() time.Time {
	switch {
	case d == nil:
		return time.Time{}
	case d.EpochMillis != 0:
		return time.UnixMilli(d.EpochMillis).UTC()
	}
	t, err := time.Parse("2006-01-02T15:04:05-0700", d.ISO8601)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// approvalPage is one page of GET /rest/servicedeskapi/request/{key}/approval.
type approvalPage struct {
	IsLastPage bool `json:"isLastPage"`
	Values     []struct {
		ID            string `json:"id"`
		Name          string `json:"name"`
		FinalDecision string `json:"finalDecision"`
		Approvers     []struct {
			Approver         jsmUser `json:"approver"`
			ApproverDecision string  `json:"approverDecision"`
		} `json:"approvers"`
		CompletedDate *jsmDate `json:"completedDate"`
	} `json:"values"`
}

// approvals reads the JSM approvals of key. A non-empty message means the
// lookup is unreachable.
//
// Approval.Approvers are the approvers whose own decision is the final one
// (who approved an approved approval, who declined a declined one); for a
// pending approval, everyone still asked. So a requester who was asked but
// did not answer is not counted as an approver.
func (c *Client) approvals(ctx context.Context, key, group string) ([]change.Approval, string) {
	var out []change.Approval
	approvers := map[int][][]string{} // index in out → ids of its approvers
	for page, start := 0, 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Sprintf("Jira listed more than %d pages of approvals for %s", maxPages, key)
		}
		var p approvalPage
		path := fmt.Sprintf("rest/servicedeskapi/request/%s/approval?start=%d&limit=%d", url.PathEscape(key), start, pageSize)
		status, header, err := c.getJSON(ctx, path, &p)
		switch {
		case status == http.StatusNotFound:
			// Not a Jira Service Management request: it has no approvals.
			return nil, ""
		case err != nil || status < 200 || status >= 300:
			return nil, c.problem(status, header, err) + " (approvals of " + key + ")"
		}
		for _, v := range p.Values {
			a := change.Approval{Name: v.Name, Decision: decision(v.FinalDecision), Approvers: []string{}, Completed: v.CompletedDate.time()}
			var ids [][]string
			for _, ap := range v.Approvers {
				if a.Decision != "pending" && decision(ap.ApproverDecision) != a.Decision {
					continue
				}
				a.Approvers = append(a.Approvers, firstOf(ap.Approver.DisplayName, ap.Approver.AccountID, ap.Approver.Name))
				if a.Decision == "approved" {
					ids = append(ids, ap.Approver.ids())
				}
			}
			approvers[len(out)] = ids
			out = append(out, a)
		}
		if p.IsLastPage || len(p.Values) == 0 {
			break
		}
		start += len(p.Values)
	}

	if group == "" || !anyApproved(approvers) {
		return out, ""
	}
	members, msg := c.groupMembers(ctx, group)
	if msg != "" {
		return nil, msg
	}
	for i := range out {
		if memberAmong(members, approvers[i]) {
			out[i].Groups = []string{group}
		}
	}
	return out, ""
}

func decision(s string) string {
	switch strings.ToLower(s) {
	case "approved":
		return "approved"
	case "declined":
		return "declined"
	default: // pending, or anything we do not know: not an approval
		return "pending"
	}
}

func anyApproved(m map[int][][]string) bool {
	for _, ids := range m {
		if len(ids) > 0 {
			return true
		}
	}
	return false
}

func memberAmong(members map[string]bool, people [][]string) bool {
	for _, ids := range people {
		for _, id := range ids {
			if members[id] {
				return true
			}
		}
	}
	return false
}

// memberPage is one page of GET /rest/api/2/group/member.
type memberPage struct {
	StartAt    int       `json:"startAt"`
	MaxResults int       `json:"maxResults"`
	Total      int       `json:"total"`
	IsLast     bool      `json:"isLast"`
	Values     []jsmUser `json:"values"`
}

// groupMembers lists the active members of group, all pages. A group Jira
// does not know has no members. A non-empty message means unreachable.
func (c *Client) groupMembers(ctx context.Context, group string) (map[string]bool, string) {
	members := map[string]bool{}
	for page, start := 0, 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Sprintf("Jira group %q has more than %d pages of members", group, maxPages)
		}
		var p memberPage
		q := url.Values{"groupname": {group}, "startAt": {fmt.Sprint(start)}, "maxResults": {fmt.Sprint(pageSize)}}
		status, header, err := c.getJSON(ctx, "rest/api/2/group/member?"+q.Encode(), &p)
		switch {
		case status == http.StatusNotFound:
			// Fail closed (nobody is a member) but say why approvals never match.
			c.log.WarnContext(ctx, "jira approval group not found; no approval can count as the group's", slog.String("jira_group", group))
			return members, ""
		case err != nil || status < 200 || status >= 300:
			return nil, c.problem(status, header, err) + fmt.Sprintf(" (members of Jira group %q)", group)
		}
		for _, m := range p.Values {
			for _, id := range m.ids() {
				members[id] = true
			}
		}
		start += len(p.Values)
		if p.IsLast || len(p.Values) == 0 || (p.Total > 0 && start >= p.Total) {
			return members, ""
		}
	}
}
