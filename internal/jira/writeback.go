package jira

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	gojira "github.com/andygrunwald/go-jira"
)

// Link is what a ticket is told of a change record: a remote link to the
// record's page, and a one-line verdict as a comment.
type Link struct {
	Key      string // the Jira issue
	RecordID string
	URL      string // the record's page
	Title    string // the link's title, e.g. "acme/api #7: compliant"
	Comment  string
}

// WriteBack adds the remote link and the comment. The link's globalId is
// the record's, so a retry updates the link instead of adding a second
// one; the comment comes last, once the link stands.
func (c *Client) WriteBack(ctx context.Context, l Link) error {
	link := &gojira.RemoteLink{
		GlobalID:     "changegate:record:" + l.RecordID,
		Application:  &gojira.RemoteLinkApplication{Type: "com.changegate", Name: "changegate"},
		Relationship: "change record",
		Object:       &gojira.RemoteLinkObject{URL: l.URL, Title: l.Title, Summary: l.Comment},
	}
	_, resp, err := c.jc.Issue.AddRemoteLinkWithContext(ctx, l.Key, link)
	if err := c.writeErr("add the remote link to", l.Key, resp, err); err != nil {
		return err
	}
	_, resp, err = c.jc.Issue.AddCommentWithContext(ctx, l.Key, &gojira.Comment{Body: l.Comment + "\n" + l.URL})
	return c.writeErr("comment on", l.Key, resp, err)
}

func (c *Client) writeErr(what, key string, resp *gojira.Response, err error) error {
	if err == nil {
		return nil
	}
	status := 0
	var header http.Header
	if resp != nil {
		status, header = resp.StatusCode, resp.Header
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}
	return fmt.Errorf("%w: %s %s: %s", ErrWriteBack, what, key, c.problem(status, header, err))
}

// ErrWriteBack marks a write-back that failed; the job that made it is
// retried.
var ErrWriteBack = errors.New("jira write-back failed")
