package ghfacts

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/manifest"
)

// Bounds on what one promotion evaluation reads.
const (
	// MaxManifestBytes bounds the manifest bytes read per pull request.
	MaxManifestBytes = 8 << 20
	// MaxStagingFiles bounds the files read under one staging path.
	MaxStagingFiles = 200
	// MaxStagingHistory bounds the commits walked back through a staging
	// file's history to find the one that put an artifact there.
	MaxStagingHistory = 30
)

// promoter reads the promotions of one pull request.
type promoter struct {
	g     *gatherer
	f     *change.Facts
	needs change.Needs
	bytes int // manifest bytes read so far
}

// promotions reads, for each pair whose production path the pull request
// touches, the artifacts it sets there and what the base branch shows of
// them under the staging path. What cannot be read is a "manifests" gap.
func (g *gatherer) promotions(ctx context.Context, f *change.Facts, needs change.Needs) error {
	p := &promoter{g: g, f: f, needs: needs}
	for _, pair := range needs.Promotions {
		if err := p.pair(ctx, pair); err != nil {
			return err
		}
	}
	return nil
}

// base is the commit the pull request is compared with: what it changes
// in production, and what staging held, are read there, so that every
// evaluation of the pull request reads the same base.
func (p *promoter) base() string { return cmp.Or(p.f.PR.BaseSHA, p.f.PR.BaseRef) }

func (p *promoter) gap(format string, args ...any) {
	p.f.Gaps = append(p.f.Gaps, change.Gap{Source: "manifests", Reason: fmt.Sprintf(format, args...)})
}

func (p *promoter) pair(ctx context.Context, pair change.PromotionPair) error {
	prod := slices.DeleteFunc(slices.Clone(p.f.Files), func(f string) bool { return !pair.InProduction(f) })
	if len(prod) == 0 {
		return nil
	}
	set, ok, err := p.changedRefs(ctx, prod, pair.Values)
	if err != nil || !ok {
		return err
	}
	staged, ok, err := p.changedRefs(ctx, slices.DeleteFunc(slices.Clone(p.f.Files), func(f string) bool { return !pair.InStaging(f) }), pair.Values)
	if err != nil || !ok {
		return err
	}
	if len(set) == 0 {
		return nil
	}
	inStaging, ok, err := p.stagingRefs(ctx, pair)
	if err != nil || !ok {
		return err
	}
	for _, c := range set {
		pr := change.Promotion{Production: pair.Production, Staging: pair.Staging, File: c.file, From: c.from, To: c.to}
		pr.AlsoStaged = slices.ContainsFunc(staged, func(s changedRef) bool { return c.to.Runs(s.to) })
		if err := p.locate(ctx, &pr, inStaging, pair.Values); err != nil {
			return err
		}
		p.f.Promotions = append(p.f.Promotions, pr)
	}
	return nil
}

// changedRef is an artifact a file sets at the head that the base did not
// have at the same place.
type changedRef struct {
	file string
	from *change.Artifact
	to   change.Artifact
}

// changedRefs compares each file at the base and the head commit. ok is
// false when a file could not be read: a gap names it.
func (p *promoter) changedRefs(ctx context.Context, files []string, values []string) ([]changedRef, bool, error) {
	var out []changedRef
	for _, file := range files {
		base, ok, err := p.refs(ctx, file, p.base(), values)
		if err != nil || !ok {
			return nil, ok, err
		}
		head, ok, err := p.refs(ctx, file, p.f.PR.HeadSHA, values)
		if err != nil || !ok {
			return nil, ok, err
		}
		before := map[string]change.Artifact{}
		for _, r := range base {
			before[r.Where] = r.Artifact
		}
		for _, r := range head {
			old, had := before[r.Where]
			switch {
			case had && old == r.Artifact:
			case had:
				out = append(out, changedRef{file: file, from: &old, to: r.Artifact})
			default:
				out = append(out, changedRef{file: file, to: r.Artifact})
			}
		}
	}
	return out, true, nil
}

// refs reads and parses one file at ref; a file that does not exist there
// has none. ok is false when the file cannot be read as a manifest.
func (p *promoter) refs(ctx context.Context, file, ref string, values []string) ([]manifest.Ref, bool, error) {
	got, err := memoised(p.g, "contents "+file+"@"+ref, func() (fetched, error) {
		d, found, err := FetchFile(ctx, p.g.client, p.g.repo, file, ref)
		return fetched{d, found}, err
	})
	if err != nil {
		return nil, false, err
	}
	if !got.found {
		return nil, true, nil
	}
	p.bytes += len(got.data)
	if p.bytes > MaxManifestBytes {
		p.gap("the manifests of this pull request are more than %d bytes; changegate reads no more", MaxManifestBytes)
		return nil, false, nil
	}
	refs, perr := manifest.Read(file, got.data, values)
	if perr != nil {
		p.gap("%v", perr)
		return nil, false, nil
	}
	return refs, true, nil
}

type fetched struct {
	data  []byte
	found bool
}

// stagingRefs reads every manifest under the pair's staging path at the
// base, by file.
func (p *promoter) stagingRefs(ctx context.Context, pair change.PromotionPair) (map[string][]manifest.Ref, bool, error) {
	files, err := p.list(ctx, literalPrefix(pair.Staging), 0)
	if err != nil {
		return nil, false, err
	}
	files = slices.DeleteFunc(files, func(f string) bool { return !pair.InStaging(f) || !isYAML(f) })
	if len(files) > MaxStagingFiles {
		p.gap("%s has more than %d manifests; changegate reads no more", pair.Staging, MaxStagingFiles)
		return nil, false, nil
	}
	out := map[string][]manifest.Ref{}
	for _, f := range files {
		refs, ok, err := p.refs(ctx, f, p.base(), pair.Values)
		if err != nil || !ok {
			return nil, ok, err
		}
		out[f] = refs
	}
	return out, true, nil
}

// list walks a directory on the base branch through the contents API.
func (p *promoter) list(ctx context.Context, dir string, depth int) ([]string, error) {
	if depth > 8 {
		return nil, nil
	}
	_, entries, _, err := p.g.client.Repositories.GetContents(ctx, p.g.repo.Owner, p.g.repo.Name, dir,
		&github.RepositoryContentGetOptions{Ref: p.base()})
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s@%s in %s: %w", dir, p.base(), p.g.repo, err)
	}
	var out []string
	for _, e := range entries {
		switch e.GetType() {
		case "file":
			out = append(out, e.GetPath())
		case "dir":
			sub, err := p.list(ctx, e.GetPath(), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

// locate finds the artifact under the staging path, the commit that put it
// there and that commit's sync evidence.
func (p *promoter) locate(ctx context.Context, pr *change.Promotion, inStaging map[string][]manifest.Ref, values []string) error {
	for _, file := range slices.Sorted(maps.Keys(inStaging)) {
		if slices.ContainsFunc(inStaging[file], func(r manifest.Ref) bool { return pr.To.Runs(r.Artifact) }) {
			pr.StagingFile = file
			break
		}
	}
	if pr.StagingFile == "" {
		return nil
	}
	sha, at, problem, err := p.introducer(ctx, pr.StagingFile, pr.To, values)
	if err != nil || problem != "" {
		pr.Problem = problem
		return err
	}
	pr.IntroducedBy, pr.IntroducedAt = sha, at
	return p.syncs(ctx, pr)
}

// introducer walks the staging file's history on the base branch back to
// the commit that put the artifact there: the oldest of the newest run of
// commits whose version of the file has it.
func (p *promoter) introducer(ctx context.Context, file string, a change.Artifact, values []string) (string, time.Time, string, error) {
	commits, _, err := p.g.client.Repositories.ListCommits(ctx, p.g.repo.Owner, p.g.repo.Name,
		&github.CommitsListOptions{SHA: p.base(), Path: file, ListOptions: github.ListOptions{PerPage: MaxStagingHistory}})
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("history of %s in %s: %w", file, p.g.repo, err)
	}
	for i, c := range commits {
		if i+1 == len(commits) {
			if len(commits) == MaxStagingHistory {
				return "", time.Time{}, fmt.Sprintf("%s has been in %s for more than %d commits; changegate does not walk further back", a, file, MaxStagingHistory), nil
			}
			return c.GetSHA(), c.GetCommit().GetCommitter().GetDate().Time, "", nil // the file's first commit
		}
		older, ok, err := p.refs(ctx, file, commits[i+1].GetSHA(), values)
		if err != nil {
			return "", time.Time{}, "", err
		}
		if !ok || !slices.ContainsFunc(older, func(r manifest.Ref) bool { return a.Runs(r.Artifact) }) {
			return c.GetSHA(), c.GetCommit().GetCommitter().GetDate().Time, "", nil
		}
	}
	return "", time.Time{}, fmt.Sprintf("no commit in the history of %s puts %s there", file, a), nil
}

// syncs reads the staging evidence of the introducing commit.
func (p *promoter) syncs(ctx context.Context, pr *change.Promotion) error {
	var err error
	if p.needs.CheckRuns {
		if pr.CheckRuns, err = p.g.checkRuns(ctx, pr.IntroducedBy); err != nil {
			return err
		}
	}
	if p.needs.Statuses {
		if pr.Statuses, err = p.g.statuses(ctx, pr.IntroducedBy); err != nil {
			return err
		}
	}
	for _, env := range dedupe(p.needs.StagingEnvironments) {
		deps, err := p.g.deployments(ctx, pr.IntroducedBy, env)
		if err != nil {
			return err
		}
		pr.Deployments = append(pr.Deployments, deps...)
	}
	return nil
}

// literalPrefix is the directory part of a glob before its first
// wildcard: where to start listing.
func literalPrefix(glob string) string {
	var dirs []string
	for _, seg := range strings.Split(strings.Trim(glob, "/"), "/") {
		if strings.ContainsAny(seg, "*?[{") {
			break
		}
		dirs = append(dirs, seg)
	}
	if len(dirs) == len(strings.Split(strings.Trim(glob, "/"), "/")) {
		dirs = dirs[:len(dirs)-1] // the glob names one file
	}
	return path.Join(dirs...)
}

func isYAML(file string) bool {
	return strings.HasSuffix(file, ".yaml") || strings.HasSuffix(file, ".yml")
}
