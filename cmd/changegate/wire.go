package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/labstack/echo/v4"

	shipped "github.com/changegate/changegate/config"
	"github.com/changegate/changegate/internal/assess"
	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/blob/s3"
	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/checks"
	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ghfacts"
	"github.com/changegate/changegate/internal/jira"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/policy"
	"github.com/changegate/changegate/internal/setup"
	"github.com/changegate/changegate/internal/store"
	"github.com/changegate/changegate/internal/web"
)

// The adapters below let the workflow in assess speak to the policy,
// GitHub, Jira, checks and store packages without any of them importing
// another.

// newAssessor wires the evaluation workflow. floor is the operator's
// policy floor, nil when there is none.
func newAssessor(store storage, clients assess.Clients, appID int64, tickets *jira.Client, archive assess.Archiver, floor *policy.Policy, log *slog.Logger) (*assess.Assessor, error) {
	defaults, err := policy.Parse(shipped.DefaultPolicyName, shipped.DefaultPolicy)
	if err != nil {
		return nil, fmt.Errorf("default policy: %w", err)
	}
	layers := policyLayers{defaults: defaults.AsFallback(), floor: floor, floorSource: shipped.DefaultPolicyName, orgs: newOrgPolicies(time.Now, log)}
	if floor != nil {
		layers.floorSource = "the operator's floor"
	}
	a := &assess.Assessor{
		Clients:  clients,
		Policies: layers.load,
		// A push to an organisation's .github repository may change its
		// baseline.
		PolicyPushed: func(repo change.Repo) {
			if strings.EqualFold(repo.Name, orgPolicyRepo) {
				layers.orgs.Forget(repo.Owner)
			}
		},
		Pull: ghfacts.PullRequest,
		Gather: func(ctx context.Context, c *github.Client, pr *change.Facts, n change.Needs) (*change.Facts, error) {
			return ghfacts.More(ctx, c, pr, n)
		},
		Publish: func(ctx context.Context, c *github.Client, s change.Subject, d change.Decision) (bool, error) {
			return checks.Publish(ctx, c, checkStore{store}, s, d, checks.PublishOptions{AppID: appID})
		},
		Pulls:          ghfacts.PullsForCommit,
		Serial:         store.serial(),
		Reconciles:     store,
		BranchCommits:  ghfacts.BranchCommits,
		DefaultBranch:  ghfacts.DefaultBranch,
		InstalledRepos: installedRepos(store),
		OpenPulls:      ghfacts.OpenPulls,
		Controls:       store,
		RequiredChecks: ghfacts.RequiredChecks,
		Bypass:         ghfacts.RulesetBypass,
		ClassicChecks:  ghfacts.ClassicRequiredChecks,
		Store:          store,
		Now:            time.Now,
		Archive:        archive,
		CommitPulls:    ghfacts.PullRequestsForCommit,
		Deployments:    ghfacts.Deployments,
		Answer: func(ctx context.Context, c *github.Client, callback, state, env, comment string) error {
			return checks.AnswerDeployment(ctx, c, callback, checks.Answer{State: state, Environment: env, Comment: comment})
		},
		Gates:         store,
		Rules:         ghfacts.ProtectionRuleApps,
		AppID:         appID,
		GroupPulls:    ghfacts.MergeGroupPulls,
		Groups:        store,
		CommitMessage: ghfacts.CommitMessage,
		AppVersion:    version,
	}
	if tickets != nil {
		a.Tickets = func(ctx context.Context, key string, approvals bool, group string) change.TicketLookup {
			return tickets.Lookup(ctx, key, jira.LookupOptions{Approvals: approvals, ApprovalGroup: group})
		}
	}
	return a, nil
}

// Policy files, in the order DESIGN.md gives: the repository's own file on
// the base branch tightens the organisation's baseline (its .github
// repository), or the server default when the organisation has none.
const (
	repoPolicyPath = ".github/changegate.yml"
	orgPolicyRepo  = ".github"
	orgPolicyPath  = "changegate.yml"
)

// policyLayers loads a repository's effective policy: the organisation's
// file over the operator's floor (or over the built-in default, a
// fallback), the repository's file over that (policy.Effective).
type policyLayers struct {
	defaults, floor *policy.Policy
	floorSource     string
	orgs            *orgPolicies
}

func (l policyLayers) load(ctx context.Context, c *github.Client, repo change.Repo, baseRef string) (assess.Policy, string, error) {
	base, source := l.defaults, l.floorSource
	if l.floor != nil {
		base = l.floor
	}
	orgRepo := change.Repo{Owner: repo.Owner, Name: orgPolicyRepo}
	org, err := l.orgs.get(ctx, c, repo.Owner)
	if err != nil {
		return nil, "", fmt.Errorf("read %s/%s: %w", orgRepo, orgPolicyPath, err)
	}
	if org.hidden {
		source += fmt.Sprintf(" (the App cannot read %s, so an organisation baseline there does not apply: add %s to the installation's repositories)", orgRepo, orgRepo)
	}
	if org.found {
		name := orgRepo.String() + "/" + orgPolicyPath
		merged, err := l.layer(base, source, name, org.data)
		if err != nil {
			return nil, "", &assess.InvalidPolicyError{Source: name, Err: err, Baseline: policyAdapter{base}, BaselineSource: source}
		}
		base, source = merged, name
	}
	data, found, err := ghfacts.FetchFile(ctx, c, repo, repoPolicyPath, baseRef)
	if err != nil {
		return nil, "", fmt.Errorf("read %s/%s: %w", repo, repoPolicyPath, err)
	}
	if !found {
		return policyAdapter{base}, source, nil
	}
	name := repoPolicyPath + "@" + baseRef
	merged, err := l.layer(base, source, name, data)
	if err != nil {
		return nil, "", &assess.InvalidPolicyError{Source: name, Err: err, Baseline: policyAdapter{base}, BaselineSource: source}
	}
	return policyAdapter{merged}, name + " over " + source, nil
}

// layer parses a file and merges it over base.
func (l policyLayers) layer(base *policy.Policy, baseSource, name string, data []byte) (*policy.Policy, error) {
	p, err := policy.Parse(name, data)
	if err != nil {
		return nil, err
	}
	merged, err := policy.Merge(base, p)
	if err != nil {
		return nil, fmt.Errorf("loosens the baseline (%s): %w", baseSource, err)
	}
	return merged, nil
}

// loadFloor reads the operator's policy floor; the server refuses to start
// on one it cannot read or parse.
func loadFloor(path string) (*policy.Policy, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy floor: %w", err)
	}
	p, err := policy.Parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("policy floor: %w", err)
	}
	return p, nil
}

// policyAdapter gives assess what it needs of a *policy.Policy.
type policyAdapter struct{ p *policy.Policy }

func (a policyAdapter) Needs() change.Needs {
	p := a.p
	return change.Needs{
		Files:               len(p.Production.Paths) > 0 || len(p.Exempt.Paths) > 0 || len(p.Staging.Promotion) > 0,
		Commits:             true, // authorship: who may not review
		Reviews:             true,
		CheckRuns:           len(p.Staging.Checks) > 0,
		Statuses:            len(p.Staging.Checks) > 0,
		StagingEnvironments: p.Staging.Environments,
		ManagerTeams:        p.Manager.Teams,
		Promotions:          p.PromotionPairs(),
	}
}

func (a policyAdapter) TicketKeys(pr change.PullRequest) []string { return policy.TicketKeys(a.p, pr) }

func (a policyAdapter) TicketOptions() (bool, string) {
	return a.p.Manager.JiraApproval, a.p.Manager.JiraGroup
}

func (a policyAdapter) Evaluate(f *change.Facts) change.Decision { return policy.Evaluate(a.p, f) }

func (a policyAdapter) ProductionBranch(branch, defaultBranch string) bool {
	return a.p.ProductionBranch(branch, defaultBranch)
}

func (a policyAdapter) LiteralProductionBranches(defaultBranch string) []string {
	return a.p.LiteralProductionBranches(defaultBranch)
}

func (a policyAdapter) LiteralProductionEnvironments() []string {
	return a.p.LiteralProductionEnvironments()
}

func (a policyAdapter) ProductionEnvironment(env string) bool { return a.p.ProductionEnvironment(env) }

func (a policyAdapter) StagingCheck(name string) bool { return a.p.StagingCheck(name) }

func (a policyAdapter) StagingEnvironment(env string) bool { return a.p.StagingEnvironment(env) }

func (a policyAdapter) ManagerTeam(team string) bool { return a.p.ManagerTeam(team) }

func (a policyAdapter) Digest() string { return a.p.Digest() }

func (a policyAdapter) EmergencyLabel() string { return a.p.Emergency.Label }

func (a policyAdapter) FrozenAt(t time.Time) (string, bool) { return a.p.FrozenAt(t) }

// checkStore adapts the store's check run memory.
type checkStore struct{ db storage }

func (s checkStore) Get(ctx context.Context, repo change.Repo, sha string) (checks.State, bool, error) {
	c, ok, err := s.db.CheckRun(ctx, repo.String(), sha)
	return checks.State{CheckRunID: c.ID, Digest: c.Digest}, ok, err
}

func (s checkStore) Put(ctx context.Context, repo change.Repo, sha string, st checks.State) error {
	return s.db.PutCheckRun(ctx, repo.String(), sha, store.CheckRun{ID: st.CheckRunID, Digest: st.Digest}, time.Now())
}

// openLedger opens the evidence ledger: the signing key (generated into
// the data dir on first start), the blob store (a directory under the data
// dir, or S3 with Object Lock when evidence_url is set), and the SQL index.
func openLedger(ctx context.Context, cfg config.Config, store storage, log *slog.Logger) (*openedLedger, error) {
	keyFile := cfg.SigningKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "signing-key.pem")
	}
	key, created, err := evidence.LoadOrCreateKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	signer, err := evidence.NewSigner(key)
	if err != nil {
		return nil, err
	}
	fp := evidence.Fingerprint(signer.Public())
	if created {
		log.Warn("generated an evidence signing key; back it up and publish its public key (changegate audit pubkey)",
			"path", keyFile, "fingerprint", fp)
	}
	var blobs blob.Store
	if cfg.EvidenceURL != "" {
		blobs, err = s3.Open(ctx, cfg.EvidenceURL, s3.Options{Logger: log.With("component", "evidence")})
	} else {
		blobs, err = fs.Open(filepath.Join(cfg.DataDir, "evidence"))
	}
	if err != nil {
		return nil, fmt.Errorf("evidence store: %w", err)
	}
	l, err := openShared(ctx, blobs, store, signer)
	if err != nil {
		return nil, err
	}
	log.Info("evidence ledger open", "records", l.Size(), "key_fingerprint", fp)
	return &openedLedger{Ledger: l, blobs: blobs, signer: signer}, nil
}

// openShared opens the ledger on the store's index. When replicas share
// the store, it opens under the writer lock, so that no other replica
// writes while this one repairs what a crash left, and every later commit
// takes the lock too.
func openShared(ctx context.Context, blobs blob.Store, store storage, signer *evidence.Signer) (*ledger.Ledger, error) {
	w := store.writers()
	if w == nil {
		return ledger.Open(ctx, blobs, store.ledgerIndex(), signer, LedgerOrigin(signer.Public()))
	}
	unlock, err := w.Lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: wait for the writer lock: %w", err)
	}
	defer unlock()
	l, err := ledger.Open(ctx, blobs, store.ledgerIndex(), signer, LedgerOrigin(signer.Public()))
	if err != nil {
		return nil, err
	}
	l.Share(w)
	return l, nil
}

// openedLedger is the ledger with what the audit side reads beside it.
type openedLedger struct {
	*ledger.Ledger
	blobs  blob.Store
	signer *evidence.Signer
}

// newAuditHandler mounts the audit API and UI when auditor tokens are
// configured; the server refuses to start on a tokens file it cannot
// read. Without tokens the routes are off (404).
func newAuditHandler(cfg config.Config, store storage, l *openedLedger, log *slog.Logger) (func(e *echo.Echo), error) {
	if cfg.AuditorTokensFile == "" {
		log.Info("audit API and UI off: no auditor tokens file (CHANGEGATE_AUDITOR_TOKENS_FILE)")
		return nil, nil
	}
	tokens, err := web.LoadTokens(cfg.AuditorTokensFile, log.With("component", "audit"))
	if err != nil {
		return nil, fmt.Errorf("auditor tokens: %w", err)
	}
	svc, err := audit.New(store.auditIndex(), ledger.NewReader(l.blobs), l.signer, LedgerOrigin(l.signer.Public()))
	if err != nil {
		return nil, err
	}
	return web.New(svc, tokens, web.Options{Logger: log.With("component", "audit"), SessionKey: sessionKey(l.signer),
		Coverage: coverageOf(store)}).Register, nil
}

// sessionKey signs auditor UI sessions. It is derived from the ledger's
// key, so every replica that shares the key accepts a session any of
// them issued, and no other secret needs configuring.
func sessionKey(s *evidence.Signer) []byte {
	return s.DeriveKey("changegate audit ui session v1")
}

// LedgerOrigin names the log in its checkpoints. It is derived from the
// signing key, so two servers with different keys never share an origin.
func LedgerOrigin(pub ed25519.PublicKey) string {
	return "changegate.local/" + evidence.Fingerprint(pub)[:16]
}

// archiver adapts the ledger and its index to assess.
type archiver struct {
	l     *openedLedger
	index ledgerIndex
}

func (a archiver) RecordsFor(ctx context.Context, repo, sha string) ([]string, error) {
	return a.index.IDsFor(ctx, repo, sha)
}

func (a archiver) TicketsOf(ctx context.Context, ids []string) ([]string, error) {
	return a.index.TicketsOf(ctx, ids)
}

func (a archiver) Append(ctx context.Context, r *evidence.Record) (uint64, error) {
	seq, err := a.l.Append(ctx, r)
	if errors.Is(err, ledger.ErrDuplicate) {
		return seq, fmt.Errorf("%w: %w", assess.ErrDuplicateRecord, err)
	}
	return seq, err
}

// newSetup mounts /setup while no App is configured. Registering one
// stores it in the data dir and tells registered, which makes the server
// serve again as the App.
func newSetup(cfg config.Config, configured bool, registered chan<- struct{}, log *slog.Logger) func(e *echo.Echo) {
	if configured {
		return nil
	}
	var done atomic.Bool
	h := setup.New(setup.Options{
		APIURL: cfg.GitHub.APIURL,
		Store: func(id int64, key, secret string) error {
			return config.StoreApp(cfg.DataDir, id, key, secret)
		},
		Configured: done.Load,
		Done: func() {
			done.Store(true)
			select {
			case registered <- struct{}{}:
			default:
			}
		},
		Logger: log.With("component", "setup"),
	})
	return h.Register
}

// installedRepos lists the inventory's repositories for reconciliation.
func installedRepos(inventory interface {
	Repositories(ctx context.Context) ([]store.Repository, error)
}) assess.Repositories {
	return func(ctx context.Context) ([]assess.InstalledRepo, error) {
		repos, err := inventory.Repositories(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]assess.InstalledRepo, 0, len(repos))
		for _, r := range repos {
			out = append(out, assess.InstalledRepo{Installation: r.InstallationID, Repo: r.FullName})
		}
		return out, nil
	}
}

// coverageOf gives the audit UI the control watch's state.
func coverageOf(store storage) web.CoverageSource {
	return func(ctx context.Context) ([]web.Coverage, error) {
		states, err := store.Coverage(ctx)
		out := make([]web.Coverage, 0, len(states))
		for _, s := range states {
			out = append(out, web.Coverage{Repo: s.Repo, Target: s.Target, Enforced: s.Enforced, Detail: s.Detail, Since: s.Since, CheckedAt: s.CheckedAt})
		}
		return out, err
	}
}
