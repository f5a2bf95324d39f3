package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
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

	mu      sync.Mutex
	entries map[string]orgPolicy
}

type orgPolicy struct {
	data    []byte
	found   bool
	fetched time.Time
}

func newOrgPolicies(now func() time.Time) *orgPolicies {
	return &orgPolicies{now: now, entries: map[string]orgPolicy{}}
}

// get returns the organisation's file, reading it when it is not cached.
func (o *orgPolicies) get(ctx context.Context, c *github.Client, org string) ([]byte, bool, error) {
	key := strings.ToLower(org)
	o.mu.Lock()
	e, ok := o.entries[key]
	o.mu.Unlock()
	if ok && o.now().Sub(e.fetched) < orgPolicyTTL {
		return e.data, e.found, nil
	}
	data, found, err := ghfacts.FetchFile(ctx, c, change.Repo{Owner: org, Name: orgPolicyRepo}, orgPolicyPath, "")
	if err != nil {
		return nil, false, err
	}
	o.mu.Lock()
	o.entries[key] = orgPolicy{data: data, found: found, fetched: o.now()}
	o.mu.Unlock()
	return data, found, nil
}

// Forget drops an organisation's cached file, on a push to its .github
// repository.
func (o *orgPolicies) Forget(org string) {
	o.mu.Lock()
	delete(o.entries, strings.ToLower(org))
	o.mu.Unlock()
}
