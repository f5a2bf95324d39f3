package jira_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jira"
	"github.com/changegate/changegate/internal/jira/jirafake"
)

func TestApprovals(t *testing.T) {
	t.Parallel()
	approvedAt := time.Date(2025, 3, 5, 14, 0, 0, 0, time.UTC)
	declinedAt := time.Date(2025, 3, 6, 8, 0, 0, 0, time.UTC)
	ann := jirafake.User{AccountID: "acc-ann", DisplayName: "Ann Reporter"}
	max := jirafake.User{AccountID: "acc-max", DisplayName: "Max Manager"}
	bob := jirafake.User{AccountID: "acc-bob", DisplayName: "Bob Peer"}

	f := jirafake.New(t, jirafake.WithPageSize(2))
	f.AddIssue(payIssue())
	f.SetApprovals("PAY-123", []jirafake.Approval{
		{Name: "Change manager", Decision: "approved", Completed: approvedAt, Approvers: []jirafake.Approver{
			{User: ann, Decision: "pending"}, {User: max, Decision: "approved"}}},
		{Name: "Peer", Decision: "approved", Completed: approvedAt, Approvers: []jirafake.Approver{{User: bob, Decision: "approved"}}},
		{Name: "Security", Decision: "declined", Completed: declinedAt, Approvers: []jirafake.Approver{
			{User: max, Decision: "declined"}, {User: bob, Decision: "approved"}}},
		{Name: "CAB", Decision: "pending", Approvers: []jirafake.Approver{{User: ann, Decision: "pending"}, {User: bob, Decision: "pending"}}},
	})
	// Max is on the last page of members.
	for i := range 4 {
		f.AddGroupMember("change-managers", jirafake.User{AccountID: "acc-other-" + string(rune('a'+i)), DisplayName: "Other"})
	}
	f.AddGroupMember("change-managers", max)
	c := client(t, f, jira.Options{})

	got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{Approvals: true, ApprovalGroup: "change-managers"})
	if got.Result != change.LookupFound {
		t.Fatalf("Lookup = %+v", got)
	}
	want := []change.Approval{
		{Name: "Change manager", Decision: "approved", Approvers: []string{"Max Manager"}, Completed: approvedAt, Groups: []string{"change-managers"}},
		{Name: "Peer", Decision: "approved", Approvers: []string{"Bob Peer"}, Completed: approvedAt},
		{Name: "Security", Decision: "declined", Approvers: []string{"Max Manager"}, Completed: declinedAt},
		{Name: "CAB", Decision: "pending", Approvers: []string{"Ann Reporter", "Bob Peer"}},
	}
	if diff := cmp.Diff(want, got.Ticket.Approvals); diff != "" {
		t.Errorf("approvals (-want +got):\n%s", diff)
	}
	if n := f.CountCalls("GET", "/rest/servicedeskapi/request/{key}/approval"); n != 2 {
		t.Errorf("%d approval pages read, want 2", n)
	}
	if n := f.CountCalls("GET", "/rest/api/2/group/member"); n != 3 {
		t.Errorf("%d member pages read, want 3 (5 members, 2 a page, once per lookup)", n)
	}

	// Without a group, members are never read.
	f.ResetCalls()
	got = c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{Approvals: true})
	if got.Ticket == nil || len(got.Ticket.Approvals) != 4 || got.Ticket.Approvals[0].Groups != nil {
		t.Fatalf("Lookup without group = %+v", got)
	}
	if n := f.CountCalls("GET", "/rest/api/2/group/member"); n != 0 {
		t.Errorf("members read %d times without a group", n)
	}
}

// Data Center names people by user name, not account ID.
func TestApprovalsDataCenter(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t, jirafake.WithBearer("pat"))
	f.AddIssue(jirafake.Issue{Key: "OPS-7", Reporter: jirafake.User{Name: "ann", DisplayName: "Ann"}})
	f.SetApprovals("OPS-7", []jirafake.Approval{{Name: "Manager", Decision: "approved", Completed: created,
		Approvers: []jirafake.Approver{{User: jirafake.User{Name: "max", DisplayName: "Max"}, Decision: "approved"}}}})
	f.AddGroupMember("managers", jirafake.User{Name: "max", DisplayName: "Max"})
	c := client(t, f, jira.Options{})

	got := c.Lookup(t.Context(), "OPS-7", jira.LookupOptions{Approvals: true, ApprovalGroup: "managers"})
	want := []change.Approval{{Name: "Manager", Decision: "approved", Approvers: []string{"Max"}, Completed: created, Groups: []string{"managers"}}}
	if got.Ticket == nil {
		t.Fatalf("Lookup = %+v", got)
	}
	if diff := cmp.Diff(want, got.Ticket.Approvals); diff != "" {
		t.Errorf("approvals (-want +got):\n%s", diff)
	}
	if got.Ticket.Reporter != "Ann" {
		t.Errorf("Reporter = %q", got.Ticket.Reporter)
	}
}

func TestApprovalsNotServiceDesk(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t)
	f.AddIssue(payIssue()) // no SetApprovals: the approval endpoint answers 404
	c := client(t, f, jira.Options{})
	got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{Approvals: true, ApprovalGroup: "managers"})
	if got.Result != change.LookupFound || got.Ticket == nil || got.Ticket.Approvals != nil || got.Error != "" {
		t.Fatalf("Lookup = %+v, want found without approvals", got)
	}
	if n := f.CountCalls("GET", "/rest/servicedeskapi/request/{key}/approval"); n != 1 {
		t.Errorf("approvals read %d times, want 1", n)
	}
}

func TestApprovalGroupUnknown(t *testing.T) {
	t.Parallel()
	f := jirafake.New(t)
	f.AddIssue(payIssue())
	f.SetApprovals("PAY-123", []jirafake.Approval{{Name: "M", Decision: "approved", Completed: created,
		Approvers: []jirafake.Approver{{User: jirafake.User{AccountID: "acc-max"}, Decision: "approved"}}}})
	c := client(t, f, jira.Options{})
	got := c.Lookup(t.Context(), "PAY-123", jira.LookupOptions{Approvals: true, ApprovalGroup: "no-such-group"})
	if got.Result != change.LookupFound || len(got.Ticket.Approvals) != 1 || got.Ticket.Approvals[0].Groups != nil {
		t.Fatalf("Lookup = %+v, want found with no group on the approval", got)
	}
	if got.Ticket.Approvals[0].Approvers[0] != "acc-max" {
		t.Errorf("approver without a display name = %q, want the account ID", got.Ticket.Approvals[0].Approvers[0])
	}
}
