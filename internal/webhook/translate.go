// Package webhook is changegate's intake: it verifies a delivery, translates
// it into durable jobs with a pure function, and hands them to an Enqueuer
// before answering GitHub. Nothing here calls GitHub.
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/changegate/changegate/internal/jobs"
)

// ErrMalformed marks a body that is not a JSON object of the event's shape.
var ErrMalformed = errors.New("malformed payload")

// Delivery is one verified webhook delivery, translated.
type Delivery struct {
	ID     string // X-GitHub-Delivery: the dedupe key
	Event  string // X-GitHub-Event
	Action string

	// Log attributes, attached once at intake.
	InstallationID int64
	Repo           string
	SHA            string

	ReceivedAt time.Time
	// Jobs is what the delivery asks the workers to do. Empty means the event
	// is irrelevant to changegate and is dropped after it is counted.
	Jobs []jobs.Job
}

// payload is the part of a webhook body that translation reads. Unknown
// fields are ignored; the body is not kept.
type payload struct {
	Action       *string `json:"action"`
	Installation *struct {
		ID      int64 `json:"id"`
		Account *struct {
			Login string `json:"login"`
			Type  string `json:"type"`
		} `json:"account"`
		RepositorySelection string  `json:"repository_selection"`
		SuspendedAt         *string `json:"suspended_at"`
	} `json:"installation"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Repositories        []repo `json:"repositories"`
	RepositoriesAdded   []repo `json:"repositories_added"`
	RepositoriesRemoved []repo `json:"repositories_removed"`

	// SHA sources, for log attributes only.
	PullRequest *struct {
		Head struct {
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
	CheckRun *struct {
		HeadSHA string `json:"head_sha"`
	} `json:"check_run"`
	CheckSuite *struct {
		HeadSHA string `json:"head_sha"`
	} `json:"check_suite"`
	WorkflowRun *struct {
		HeadSHA string `json:"head_sha"`
	} `json:"workflow_run"`
	Deployment *struct {
		SHA string `json:"sha"`
	} `json:"deployment"`
	SHA   string `json:"sha"`   // status
	After string `json:"after"` // push
}

type repo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	Private  bool   `json:"private"`
}

// Translate turns a verified delivery into jobs. It is pure: the result
// depends only on its arguments.
func Translate(id, event string, body []byte, received time.Time) (Delivery, error) {
	d := Delivery{ID: id, Event: event, ReceivedAt: received.UTC()}
	var p payload
	if !isObject(body) {
		return d, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return d, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if p.Action != nil {
		d.Action = *p.Action
	}
	if p.Installation != nil {
		d.InstallationID = p.Installation.ID
	}
	if p.Repository != nil {
		d.Repo = p.Repository.FullName
	}
	d.SHA = headSHA(&p)

	switch event {
	case "installation", "installation_repositories":
		job, err := installationJob(id, event, d.Action, &p)
		if err != nil {
			return d, err
		}
		d.Jobs = []jobs.Job{job}
	}
	return d, nil
}

func headSHA(p *payload) string {
	switch {
	case p.PullRequest != nil:
		return p.PullRequest.Head.SHA
	case p.CheckRun != nil:
		return p.CheckRun.HeadSHA
	case p.CheckSuite != nil:
		return p.CheckSuite.HeadSHA
	case p.WorkflowRun != nil:
		return p.WorkflowRun.HeadSHA
	case p.Deployment != nil:
		return p.Deployment.SHA
	case p.SHA != "":
		return p.SHA
	}
	return p.After
}

func installationJob(id, event, action string, p *payload) (jobs.Job, error) {
	in := p.Installation
	if in == nil || in.ID == 0 || in.Account == nil {
		return nil, fmt.Errorf("%w: %s event without installation.id and installation.account", ErrMalformed, event)
	}
	if action == "" {
		return nil, fmt.Errorf("%w: %s event without action", ErrMalformed, event)
	}
	return jobs.InstallationEvent{
		DeliveryID: id,
		Event:      event,
		Action:     action,
		Installation: jobs.Installation{
			ID:                  in.ID,
			Account:             in.Account.Login,
			AccountType:         in.Account.Type,
			RepositorySelection: in.RepositorySelection,
			Suspended:           in.SuspendedAt != nil && *in.SuspendedAt != "",
		},
		Repos:   repos(p.Repositories),
		Added:   repos(p.RepositoriesAdded),
		Removed: repos(p.RepositoriesRemoved),
	}, nil
}

func repos(in []repo) []jobs.Repo {
	if len(in) == 0 {
		return nil
	}
	out := make([]jobs.Repo, len(in))
	for i, r := range in {
		out[i] = jobs.Repo{ID: r.ID, FullName: r.FullName, Private: r.Private}
	}
	return out
}

func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}
