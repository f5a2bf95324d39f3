package inventory

import (
	"context"
	"fmt"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/jobs"
)

// Clients hands out go-github clients authenticated as the App and as one
// of its installations.
type Clients interface {
	AppClient() *github.Client
	Installation(id int64) (*github.Client, error)
}

// GitHubLister lists installations and repositories through the REST API.
type GitHubLister struct {
	Clients Clients
}

// ListInstallations pages through GET /app/installations.
func (g GitHubLister) ListInstallations(ctx context.Context) ([]jobs.Installation, error) {
	client := g.Clients.AppClient()
	opts := &github.ListOptions{PerPage: 100}
	var out []jobs.Installation
	for {
		page, resp, err := client.Apps.ListInstallations(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, in := range page {
			out = append(out, jobs.Installation{
				ID:                  in.GetID(),
				Account:             in.GetAccount().GetLogin(),
				AccountType:         in.GetAccount().GetType(),
				RepositorySelection: in.GetRepositorySelection(),
				Suspended:           in.SuspendedAt != nil,
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// ListRepos pages through GET /installation/repositories.
func (g GitHubLister) ListRepos(ctx context.Context, installationID int64) ([]jobs.Repo, error) {
	client, err := g.Clients.Installation(installationID)
	if err != nil {
		return nil, fmt.Errorf("installation %d client: %w", installationID, err)
	}
	opts := &github.ListOptions{PerPage: 100}
	var out []jobs.Repo
	for {
		page, resp, err := client.Apps.ListRepos(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Repositories {
			out = append(out, jobs.Repo{ID: r.GetID(), FullName: r.GetFullName(), Private: r.GetPrivate()})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}
