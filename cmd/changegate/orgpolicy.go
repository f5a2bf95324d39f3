package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/ghfacts"
)

// orgPolicyTTL bounds how long an organisation's baseline is trusted
// without a push to its .github repository, for the case where a push was
// missed or there is no file yet.
const orgPolicyTTL = 10 * time.Minute

// orgPolicies caches each organisation's changegate.yml: every evaluation
// needs it, and it changes rarely. A push to the organisation's .github
// repository drops the entry (Forget); otherwise it lives orgPolicyTTL.
// Errors are not cached.
type orgPolicies struct {
	now func() time.Time
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]orgPolicy
}

type orgPolicy struct {
	data  []byte
	found bool
	// hidden says the App cannot read the organisation's .github
	// repository at all (an installation on selected repositories), so a
	// baseline there, if any, does not apply.
	hidden  bool
	fetched time.Time
}

func newOrgPolicies(now func() time.Time, log *slog.Logger) *orgPolicies {
	return &orgPolicies{now: now, log: log, entries: map[string]orgPolicy{}}
}

// get returns the organisation's file, reading it when it is not cached.
func (o *orgPolicies) get(ctx context.Context, c *github.Client, org string) (orgPolicy, error) {
	key := strings.ToLower(org)
	o.mu.Lock()
	e, ok := o.entries[key]
	o.mu.Unlock()
	if ok && o.now().Sub(e.fetched) < orgPolicyTTL {
		return e, nil
	}
	repo := change.Repo{Owner: org, Name: orgPolicyRepo}
	data, found, err := ghfacts.FetchFile(ctx, c, repo, orgPolicyPath, "")
	if err != nil {
		return orgPolicy{}, err
	}
	e = orgPolicy{data: data, found: found, fetched: o.now()}
	if !found {
		// No file, or no access to the repository: only the second means
		// a baseline the organisation may believe in does not apply.
		if _, _, err := c.Repositories.Get(ctx, org, orgPolicyRepo); ghapp.IsNotFound(err) {
			e.hidden = true
		} else if err != nil {
			return orgPolicy{}, fmt.Errorf("read %s: %w", repo, err)
		}
	}
	o.mu.Lock()
	was, seen := o.entries[key]
	o.entries[key] = e
	o.mu.Unlock()
	if e.hidden && (!seen || !was.hidden) {
		o.log.Warn("the App cannot read the organisation's .github repository; its changegate.yml, if any, does not apply",
			"repo", repo.String(), "fix", "add "+repo.String()+" to the installation's repositories")
	}
	return e, nil
}

// Forget drops an organisation's cached file, on a push to its .github
// repository.
func (o *orgPolicies) Forget(org string) {
	o.mu.Lock()
	delete(o.entries, strings.ToLower(org))
	o.mu.Unlock()
}
