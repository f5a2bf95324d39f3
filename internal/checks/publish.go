package checks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
)

// State is what Publish remembers about the check run on one commit.
type State struct {
	CheckRunID int64
	// Digest identifies what was last written (output, details URL and
	// external ID), so an unchanged decision costs no request.
	Digest string
}

// Store keeps State per repository and head SHA. It is shared by replicas
// in production; losing it costs requests, never correctness.
type Store interface {
	Get(ctx context.Context, repo change.Repo, sha string) (State, bool, error)
	Put(ctx context.Context, repo change.Repo, sha string, st State) error
}

// PublishOptions say who is writing and where people find more.
type PublishOptions struct {
	// AppID is this App's ID. Required: it tells our check run from a
	// check of the same name by anyone else.
	AppID int64
	// DetailsURL links the check to changegate's own page; optional.
	DetailsURL string
	// ExternalID is the run's reference in changegate; default
	// "owner/repo#number".
	ExternalID string
}

// Publish makes the changegate check run on the subject's head commit say
// what Render makes of d. It writes only when that differs from what it
// last wrote: creating and updating check runs count toward GitHub's
// secondary limit of 80 content-creating requests a minute. Callers
// serialise Publish per head commit.
func Publish(ctx context.Context, client *github.Client, store Store, s change.Subject, d change.Decision, opts PublishOptions) (wrote bool, err error) {
	if s.HeadSHA == "" {
		return false, fmt.Errorf("publish check %s#%d: no head sha", s.Repo, s.Number)
	}
	if opts.AppID <= 0 {
		return false, fmt.Errorf("publish check %s#%d: app id is required", s.Repo, s.Number)
	}
	if opts.ExternalID == "" {
		opts.ExternalID = s.Repo.String() + "#" + strconv.Itoa(s.Number)
	}
	out := Render(s, d)
	digest := writeDigest(out, opts)

	st, ok, err := store.Get(ctx, s.Repo, s.HeadSHA)
	if err != nil {
		return false, fmt.Errorf("publish check %s@%s: read state: %w", s.Repo, short(s.HeadSHA), err)
	}
	if ok && st.Digest == digest {
		return false, nil
	}

	var current *github.CheckRun
	id := st.CheckRunID
	if id == 0 {
		// Local state was lost (new replica, wiped store): find our run on
		// GitHub rather than add a duplicate.
		current, err = findRun(ctx, client, s, opts.AppID)
		if err != nil {
			return false, err
		}
		if current != nil {
			id = current.GetID()
			if same(current, out, opts) {
				return false, putState(ctx, store, s, State{CheckRunID: id, Digest: digest})
			}
		}
	} else if out.Status != StatusCompleted {
		current, err = getRun(ctx, client, s, id)
		if err != nil {
			return false, err
		}
		if current == nil {
			id = 0
		}
	}
	// GitHub keeps a completed run's conclusion when its status goes back
	// to in_progress, so a run that succeeded cannot be made pending
	// again. A new run of the same name supersedes it instead.
	if current != nil && out.Status != StatusCompleted && current.GetStatus() == StatusCompleted {
		id = 0
	}

	if id != 0 {
		id, err = update(ctx, client, s, id, out, opts)
		if err != nil {
			return false, err
		}
	}
	if id == 0 {
		if id, err = create(ctx, client, s, out, opts); err != nil {
			return false, err
		}
	}
	return true, putState(ctx, store, s, State{CheckRunID: id, Digest: digest})
}

func putState(ctx context.Context, store Store, s change.Subject, st State) error {
	if err := store.Put(ctx, s.Repo, s.HeadSHA, st); err != nil {
		return fmt.Errorf("publish check %s@%s: save state: %w", s.Repo, short(s.HeadSHA), err)
	}
	return nil
}

// writeDigest covers everything a write sends, so any change to it is
// written and nothing else is.
func writeDigest(o Output, opts PublishOptions) string {
	h := sha256.New()
	for _, f := range []string{Name, o.Status, o.Conclusion, o.Title, o.Summary, o.Text, opts.DetailsURL, opts.ExternalID} {
		// Length-prefixed, so no two field lists hash alike.
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// same says whether the run on GitHub already shows out.
func same(cr *github.CheckRun, out Output, opts PublishOptions) bool {
	o := cr.GetOutput()
	return cr.GetStatus() == out.Status && cr.GetConclusion() == out.Conclusion &&
		o.GetTitle() == out.Title && o.GetSummary() == out.Summary && o.GetText() == out.Text &&
		cr.GetExternalID() == opts.ExternalID &&
		(opts.DetailsURL == "" || cr.GetDetailsURL() == opts.DetailsURL)
}

// findRun returns this App's latest changegate run on the head commit.
func findRun(ctx context.Context, client *github.Client, s change.Subject, appID int64) (*github.CheckRun, error) {
	opts := &github.ListCheckRunsOptions{
		CheckName:   github.String(Name),
		AppID:       github.Int64(appID),
		Filter:      github.String("latest"),
		ListOptions: github.ListOptions{PerPage: 100},
	}
	var latest *github.CheckRun
	for {
		res, resp, err := client.Checks.ListCheckRunsForRef(ctx, s.Repo.Owner, s.Repo.Name, s.HeadSHA, opts)
		if err != nil {
			return nil, fmt.Errorf("publish check %s@%s: list check runs: %w", s.Repo, short(s.HeadSHA), err)
		}
		for _, cr := range res.CheckRuns {
			// Filter again: an older GitHub Enterprise Server may ignore
			// a query parameter, and a same-named check by another App
			// must never be taken for ours.
			if cr.GetName() != Name || cr.GetApp().GetID() != appID || cr.GetHeadSHA() != s.HeadSHA {
				continue
			}
			if latest == nil || cr.GetID() > latest.GetID() {
				latest = cr
			}
		}
		if resp.NextPage == 0 {
			return latest, nil
		}
		opts.Page = resp.NextPage
	}
}

// getRun reads one run; nil when GitHub no longer has it.
func getRun(ctx context.Context, client *github.Client, s change.Subject, id int64) (*github.CheckRun, error) {
	cr, _, err := client.Checks.GetCheckRun(ctx, s.Repo.Owner, s.Repo.Name, id)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("publish check %s@%s: get check run %d: %w", s.Repo, short(s.HeadSHA), id, err)
	}
	return cr, nil
}

func create(ctx context.Context, client *github.Client, s change.Subject, out Output, opts PublishOptions) (int64, error) {
	cr, _, err := client.Checks.CreateCheckRun(ctx, s.Repo.Owner, s.Repo.Name, github.CreateCheckRunOptions{
		Name:       Name,
		HeadSHA:    s.HeadSHA,
		DetailsURL: optional(opts.DetailsURL),
		ExternalID: github.String(opts.ExternalID),
		Status:     github.String(out.Status),
		Conclusion: optional(out.Conclusion),
		Output:     output(out),
	})
	if err != nil {
		return 0, fmt.Errorf("publish check %s@%s: create check run: %w", s.Repo, short(s.HeadSHA), err)
	}
	return cr.GetID(), nil
}

// update rewrites run id; it returns 0 when GitHub no longer has the run.
func update(ctx context.Context, client *github.Client, s change.Subject, id int64, out Output, opts PublishOptions) (int64, error) {
	_, _, err := client.Checks.UpdateCheckRun(ctx, s.Repo.Owner, s.Repo.Name, id, github.UpdateCheckRunOptions{
		Name:       Name,
		DetailsURL: optional(opts.DetailsURL),
		ExternalID: github.String(opts.ExternalID),
		Status:     github.String(out.Status),
		Conclusion: optional(out.Conclusion),
		Output:     output(out),
	})
	if notFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("publish check %s@%s: update check run %d: %w", s.Repo, short(s.HeadSHA), id, err)
	}
	return id, nil
}

func output(o Output) *github.CheckRunOutput {
	// Text is always sent, even empty: GitHub keeps the previous text of
	// a run when an update leaves it out.
	return &github.CheckRunOutput{Title: github.String(o.Title), Summary: github.String(o.Summary), Text: github.String(o.Text)}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func notFound(err error) bool {
	var e *github.ErrorResponse
	return errors.As(err, &e) && e.Response != nil && e.Response.StatusCode == http.StatusNotFound
}
