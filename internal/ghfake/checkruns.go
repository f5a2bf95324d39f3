package ghfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// appSlug is the slug of the App the fake authenticates.
const appSlug = "changegate"

// Limits the Checks API enforces on a write.
const (
	maxCheckOutput      = 65535 // output.summary and output.text, in characters
	maxCheckAnnotations = 50
	maxCheckActions     = 3
)

// CheckRunOutput is what a check run shows now, as the Checks API took it.
type CheckRunOutput struct {
	Status, Conclusion     string
	Title, Summary, Text   string
	DetailsURL, ExternalID string
}

// CheckRunWrite is one accepted create (POST) or update (PATCH) of a check
// run: the run as it stood after the write, and the body as sent.
type CheckRunWrite struct {
	Method     string // POST or PATCH
	CheckRunID int64
	HeadSHA    string
	Name       string
	CheckRunOutput
	Body []byte
}

// checkRunLog is the write history of one Server.
type checkRunLog struct {
	mu     sync.Mutex // serialises check-run writes: read, change, store
	writes map[string][]CheckRunWrite
}

func (s *Server) checkRunLog() *checkRunLog { return &s.runLog }

// checkRunRoutes registers the Checks API's check-run endpoints.
func (s *Server) checkRunRoutes() {
	s.Handle("POST", "/repos/{owner}/{repo}/check-runs", s.createCheckRun)
	s.Handle("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", s.getCheckRun)
	s.Handle("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", s.updateCheckRun)
	s.Handle("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", s.listCheckRunsForRef)
}

// CheckRuns returns the check runs on sha, oldest first.
func (s *Server) CheckRuns(owner, repo, sha string) []CheckRun {
	return s.checkRunsFor(owner, repo, sha)
}

// LatestCheckRun is the newest run named name on sha by any App: the one
// the pull request page and branch protection read.
func (s *Server) LatestCheckRun(owner, repo, sha, name string) (CheckRun, bool) {
	var out CheckRun
	found := false
	for _, cr := range s.checkRunsFor(owner, repo, sha) {
		if cr.Name == name && (!found || cr.ID > out.ID) {
			out, found = cr, true
		}
	}
	return out, found
}

// CheckRunOutput returns what check run id shows now.
func (s *Server) CheckRunOutput(owner, repo string, id int64) (CheckRunOutput, bool) {
	cr, ok := s.checkRunByID(owner, repo, id)
	if !ok {
		return CheckRunOutput{}, false
	}
	return outputOf(cr), true
}

// CheckRunWrites returns every accepted check-run create and update in
// owner/repo, in order.
func (s *Server) CheckRunWrites(owner, repo string) []CheckRunWrite {
	l := s.checkRunLog()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes[strings.ToLower(owner+"/"+repo)])
}

// checkRunRepo is the caller's {owner}/{repo}; it writes the 404 itself.
func (s *Server) checkRunRepo(w http.ResponseWriter, r *http.Request) (Repo, bool) {
	s.mu.Lock()
	_, repo := s.callerRepo(r)
	s.mu.Unlock()
	if repo == nil {
		writeError(w, http.StatusNotFound, "Not Found")
		return Repo{}, false
	}
	return *repo, true
}

func outputOf(cr CheckRun) CheckRunOutput {
	return CheckRunOutput{
		Status: cr.Status, Conclusion: cr.Conclusion,
		Title: cr.OutputTitle, Summary: cr.OutputSummary, Text: cr.OutputText,
		DetailsURL: cr.DetailsURL, ExternalID: cr.ExternalID,
	}
}

func (s *Server) checkRunByID(owner, repo string, id int64) (CheckRun, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cr := range s.dataOf(owner, repo).checkRuns {
		if cr.ID == id {
			return cr, true
		}
	}
	return CheckRun{}, false
}

// checkRunBody is a create or update request. Pointers tell "absent" from
// "empty", as GitHub does.
type checkRunBody struct {
	Name        *string `json:"name"`
	HeadSHA     *string `json:"head_sha"`
	DetailsURL  *string `json:"details_url"`
	ExternalID  *string `json:"external_id"`
	Status      *string `json:"status"`
	Conclusion  *string `json:"conclusion"`
	StartedAt   *string `json:"started_at"`
	CompletedAt *string `json:"completed_at"`
	Output      *struct {
		Title       *string           `json:"title"`
		Summary     *string           `json:"summary"`
		Text        *string           `json:"text"`
		Annotations []json.RawMessage `json:"annotations"`
		Images      []json.RawMessage `json:"images"`
	} `json:"output"`
	Actions []json.RawMessage `json:"actions"`
}

var (
	checkStatuses    = []string{"queued", "in_progress", "completed"}
	checkConclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"}
	shaRE            = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// decodeCheckRun reads and validates a body as GitHub does; it writes the
// 400 or 422 itself.
func decodeCheckRun(w http.ResponseWriter, r *http.Request, create bool) (checkRunBody, []byte, bool) {
	var b checkRunBody
	raw, err := io.ReadAll(r.Body)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		err = dec.Decode(&b)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return b, nil, false
	}
	invalid := func(format string, args ...any) (checkRunBody, []byte, bool) {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+fmt.Sprintf(format, args...))
		return b, nil, false
	}
	if create && (b.Name == nil || *b.Name == "") {
		return invalid(`"name" wasn't supplied.`)
	}
	if create && (b.HeadSHA == nil || *b.HeadSHA == "") {
		return invalid(`"head_sha" wasn't supplied.`)
	}
	if create && !shaRE.MatchString(*b.HeadSHA) {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+*b.HeadSHA)
		return b, nil, false
	}
	if b.Status != nil && !slices.Contains(checkStatuses, *b.Status) {
		return invalid("%q is not a member of %v.", *b.Status, checkStatuses)
	}
	if b.Conclusion != nil && !slices.Contains(checkConclusions, *b.Conclusion) {
		return invalid("%q is not a member of %v.", *b.Conclusion, checkConclusions)
	}
	if (b.Status != nil && *b.Status == "completed" || b.CompletedAt != nil) && b.Conclusion == nil {
		return invalid(`"conclusion" wasn't supplied.`)
	}
	for _, t := range []*string{b.StartedAt, b.CompletedAt} {
		if t != nil {
			if _, err := time.Parse(time.RFC3339, *t); err != nil {
				return invalid("%q is not a date-time.", *t)
			}
		}
	}
	if o := b.Output; o != nil {
		switch {
		case o.Title == nil:
			return invalid(`"title" wasn't supplied.`)
		case o.Summary == nil:
			return invalid(`"summary" wasn't supplied.`)
		case utf8.RuneCountInString(*o.Summary) > maxCheckOutput:
			return invalid("Only %d characters are allowed; %d were supplied (summary).", maxCheckOutput, utf8.RuneCountInString(*o.Summary))
		case o.Text != nil && utf8.RuneCountInString(*o.Text) > maxCheckOutput:
			return invalid("Only %d characters are allowed; %d were supplied (text).", maxCheckOutput, utf8.RuneCountInString(*o.Text))
		case len(o.Annotations) > maxCheckAnnotations:
			return invalid("At most %d annotations are allowed per request.", maxCheckAnnotations)
		}
	}
	if len(b.Actions) > maxCheckActions {
		return invalid("At most %d actions are allowed.", maxCheckActions)
	}
	return b, raw, true
}

// apply sets what b says on cr, as GitHub does: a conclusion completes the
// run; going back to queued or in_progress keeps the old conclusion.
func (s *Server) apply(cr *CheckRun, b checkRunBody) {
	now := s.now()
	setIf := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	setIf(&cr.Name, b.Name)
	setIf(&cr.DetailsURL, b.DetailsURL)
	setIf(&cr.ExternalID, b.ExternalID)
	setIf(&cr.Status, b.Status)
	if b.StartedAt != nil {
		cr.StartedAt, _ = time.Parse(time.RFC3339, *b.StartedAt)
	}
	if b.Conclusion != nil {
		cr.Status, cr.Conclusion = "completed", *b.Conclusion
		cr.CompletedAt = now
		if b.CompletedAt != nil {
			cr.CompletedAt, _ = time.Parse(time.RFC3339, *b.CompletedAt)
		}
	}
	if o := b.Output; o != nil {
		cr.OutputTitle, cr.OutputSummary = *o.Title, *o.Summary
		setIf(&cr.OutputText, o.Text)
	}
}

func (s *Server) createCheckRun(w http.ResponseWriter, r *http.Request) {
	b, raw, ok := decodeCheckRun(w, r, true)
	if !ok {
		return
	}
	repo, ok := s.checkRunRepo(w, r)
	if !ok {
		return
	}
	cr := CheckRun{HeadSHA: *b.HeadSHA, Status: "queued", AppSlug: appSlug, StartedAt: s.now()}
	s.apply(&cr, b)

	l := s.checkRunLog()
	l.mu.Lock()
	cr = s.storeCheckRun(repo.Owner, repo.Name, cr)
	l.record(repo, http.MethodPost, cr, raw)
	l.mu.Unlock()
	WriteJSON(w, http.StatusCreated, s.checkRunJSON(repo, cr))
}

func (s *Server) updateCheckRun(w http.ResponseWriter, r *http.Request) {
	b, raw, ok := decodeCheckRun(w, r, false)
	if !ok {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("check_run_id"), 10, 64)
	repo, ok := s.checkRunRepo(w, r)
	if !ok {
		return
	}
	l := s.checkRunLog()
	l.mu.Lock()
	defer l.mu.Unlock()
	cr, found := s.checkRunByID(repo.Owner, repo.Name, id)
	switch {
	case !found:
		writeError(w, http.StatusNotFound, "Not Found")
		return
	case cr.AppSlug != appSlug:
		// Only the App that created a run may change it.
		writeError(w, http.StatusForbidden, "Resource not accessible by integration")
		return
	}
	s.apply(&cr, b)
	cr = s.storeCheckRun(repo.Owner, repo.Name, cr)
	l.record(repo, http.MethodPatch, cr, raw)
	WriteJSON(w, http.StatusOK, s.checkRunJSON(repo, cr))
}

func (l *checkRunLog) record(repo Repo, method string, cr CheckRun, body []byte) {
	k := strings.ToLower(repo.FullName())
	l.writes[k] = append(l.writes[k], CheckRunWrite{
		Method: method, CheckRunID: cr.ID, HeadSHA: cr.HeadSHA, Name: cr.Name,
		CheckRunOutput: outputOf(cr), Body: body,
	})
}

func (s *Server) getCheckRun(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("check_run_id"), 10, 64)
	repo, ok := s.checkRunRepo(w, r)
	if !ok {
		return
	}
	cr, ok := s.checkRunByID(repo.Owner, repo.Name, id)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	WriteJSON(w, http.StatusOK, s.checkRunJSON(repo, cr))
}

// listCheckRunsForRef answers a commit's check runs, newest first, with
// GitHub's filters: check_name, status, app_id and filter (latest keeps
// the newest run per App and name; all keeps every run).
func (s *Server) listCheckRunsForRef(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := q.Get("filter")
	if filter == "" {
		filter = "latest"
	}
	if filter != "latest" && filter != "all" {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+strconv.Quote(filter)+" is not a member of [latest all].")
		return
	}
	if st := q.Get("status"); st != "" && !slices.Contains(checkStatuses, st) {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+strconv.Quote(st)+" is not a member of [queued in_progress completed].")
		return
	}
	var appID int64
	if v := q.Get("app_id"); v != "" {
		var err error
		if appID, err = strconv.ParseInt(v, 10, 64); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n"+strconv.Quote(v)+" is not an integer.")
			return
		}
	}
	repo, ok := s.checkRunRepo(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	sha := s.dataOf(repo.Owner, repo.Name).resolve(r.PathValue("ref"))
	s.mu.Unlock()

	runs := s.checkRunsFor(repo.Owner, repo.Name, sha)
	slices.Reverse(runs) // newest first
	seen := map[string]bool{}
	out := make([]map[string]any, 0, len(runs))
	for _, cr := range runs {
		// latest is decided before the other filters: an older completed
		// run does not come back because the newest is in progress.
		key := cr.AppSlug + "\x00" + cr.Name
		superseded := filter == "latest" && seen[key]
		seen[key] = true
		switch {
		case superseded,
			q.Get("check_name") != "" && cr.Name != q.Get("check_name"),
			q.Get("status") != "" && cr.Status != q.Get("status"),
			appID != 0 && s.appIDOf(cr.AppSlug) != appID:
			continue
		}
		out = append(out, s.checkRunJSON(repo, cr))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"total_count": len(out), "check_runs": Paginate(w, r, out)})
}

// appIDOf is the fake's App for its own slug, and a stable made-up ID for
// other Apps (CI, Flux, Argo CD) that tests seed runs for.
func (s *Server) appIDOf(slug string) int64 {
	if slug == appSlug {
		return s.appID
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(slug))
	return 200000 + int64(h.Sum32()%100000000)
}

// checkRunJSON is GitHub's check-run schema.
func (s *Server) checkRunJSON(repo Repo, cr CheckRun) map[string]any {
	api := s.srv.URL + "/repos/" + repo.FullName()
	id := strconv.FormatInt(cr.ID, 10)
	appID := s.appIDOf(cr.AppSlug)
	suite := s.checkSuiteID(cr.HeadSHA, appID)
	detailsURL := cr.DetailsURL
	if detailsURL == "" {
		detailsURL = "https://github.com/apps/" + cr.AppSlug
	}
	var conclusion any
	if cr.Conclusion != "" {
		conclusion = cr.Conclusion
	}
	var completedAt any
	if cr.Status == "completed" {
		completedAt = ts(latest(cr.CompletedAt, cr.StartedAt))
	}
	started := cr.StartedAt
	if started.IsZero() {
		started = s.now()
	}
	return map[string]any{
		"id":           cr.ID,
		"node_id":      "CR_kwDO" + id,
		"head_sha":     cr.HeadSHA,
		"external_id":  cr.ExternalID,
		"url":          api + "/check-runs/" + id,
		"html_url":     "https://github.com/" + repo.FullName() + "/runs/" + id,
		"details_url":  detailsURL,
		"status":       cr.Status,
		"conclusion":   conclusion,
		"started_at":   ts(started),
		"completed_at": completedAt,
		"name":         cr.Name,
		"output": map[string]any{
			"title":             nullable(cr.OutputTitle),
			"summary":           nullable(cr.OutputSummary),
			"text":              nullable(cr.OutputText),
			"annotations_count": 0,
			"annotations_url":   api + "/check-runs/" + id + "/annotations",
		},
		"check_suite":   map[string]any{"id": suite},
		"app":           s.appJSON(cr.AppSlug, appID),
		"pull_requests": []any{},
	}
}

// checkSuiteID is stable per commit and App, as GitHub groups runs.
func (s *Server) checkSuiteID(sha string, appID int64) int64 {
	h := fnv.New32a()
	_, _ = fmt.Fprintf(h, "%s/%d", sha, appID)
	return 300000 + int64(h.Sum32()%100000000)
}

// appJSON is GitHub's integration schema.
func (s *Server) appJSON(slug string, id int64) map[string]any {
	created := ts(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	return map[string]any{
		"id":           id,
		"slug":         slug,
		"node_id":      "A_kwDO" + strconv.FormatInt(id, 10),
		"owner":        s.accountJSON(slug+"-dev", id+1, "Organization"),
		"name":         slug,
		"description":  nil,
		"external_url": "https://github.com/apps/" + slug,
		"html_url":     "https://github.com/apps/" + slug,
		"created_at":   created,
		"updated_at":   created,
		"permissions":  map[string]string{"checks": "write", "metadata": "read"},
		"events":       []string{"check_run", "check_suite"},
	}
}
