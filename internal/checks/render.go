// Package checks turns a Decision into the changegate check run: Render
// writes what engineers read (title, markdown summary, details), and
// Publish creates or updates the one check run on the head commit, writing
// only when what it would write changed.
package checks

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/changegate/changegate/internal/change"
)

// Name is the check run's name; branch protection requires it.
const Name = "changegate"

// Check run statuses and conclusions, as GitHub names them.
const (
	StatusCompleted   = "completed"
	StatusInProgress  = "in_progress"
	ConclusionSuccess = "success"
	ConclusionFailure = "failure"
	ConclusionNeutral = "neutral"
)

// MaxOutput is GitHub's limit on output.summary and output.text, in
// characters. Render keeps both under it in bytes, which is stricter.
const MaxOutput = 65535

// DefaultEmergencyWindow is quoted when a decision does not carry the
// policy's emergency window.
const DefaultEmergencyWindow = 48 * time.Hour

func emergencyWindow(d change.Decision) time.Duration {
	if d.EmergencyWindow > 0 {
		return d.EmergencyWindow
	}
	return DefaultEmergencyWindow
}

// Output is a check run's status, conclusion and output.
type Output struct {
	Status     string // completed or in_progress
	Conclusion string // empty unless completed
	Title      string
	Summary    string // markdown
	Text       string // markdown
}

// Caps on user-supplied text, so one long ticket summary or reason list
// cannot crowd out the rest of the check.
const (
	maxTitle      = 200 // runes
	maxCell       = 300 // runes per table cell item
	maxReason     = 500 // runes per reason
	maxReasons    = 20  // per control
	maxCellItems  = 3   // evidence items shown in the table
	maxPolicyErr  = 4000
	shortDigestAt = 12
)

// Render is the check run for a decision. It is pure: the same subject and
// decision always give the same output, so its digest says whether a write
// is needed. It never concludes success unless every required control
// passed: anything it cannot make sense of keeps the check blocking.
func Render(s change.Subject, d change.Decision) Output {
	switch d.Outcome {
	case change.NotProduction:
		return notice(s, d, "Not a production change",
			"changegate enforces change management on production changes only; nothing is required here.")
	case change.Exempt:
		return notice(s, d, "Exempt",
			"The policy exempts this change from the controls. The exemption is written into the change record.")
	case change.InvalidPolicy:
		return invalidPolicy(s, d)
	case change.Compliant, change.NonCompliant, change.Undecided:
		return controls(s, d)
	}
	out := Output{
		Status: StatusInProgress,
		Title:  "Waiting: changegate could not decide",
	}
	body := "changegate produced a decision it does not recognise (outcome " + code(string(d.Outcome)) +
		"), so this check keeps blocking. It is retried automatically.\n"
	out.Summary = fit(header(s)+body, footer(s, d))
	return out
}

// row is one control as shown.
type row struct {
	change.ControlResult
	required bool
}

func controls(s change.Subject, d change.Decision) Output {
	g := groupRows(d)
	var out Output
	out.Status, out.Conclusion, out.Title = g.verdict(d)
	out.Title = clip(out.Title, maxTitle)

	var b strings.Builder
	b.WriteString(header(s))
	if d.Emergency {
		fmt.Fprintf(&b, "> **Emergency change.** Only the ticket and one review are required to merge. "+
			"A manager must approve after the fact within %s, or the change stays an open exception.\n\n",
			hours(emergencyWindow(d)))
	}
	controlTable(&b, d, g.rows)
	whatIsMissing(&b, d, g.open())
	ignoredApprovals(&b, d)
	out.Summary = fit(b.String(), footer(s, d))
	out.Text = fit(details(d), "")
	return out
}

// rowGroups are a decision's controls as rows, sorted by result.
type rowGroups struct {
	rows                           []row
	met, missing, pending, waiting []row // waiting: required and pending
	manager                        *row
}

func groupRows(d change.Decision) rowGroups {
	var g rowGroups
	for _, c := range d.Controls {
		// An emergency change needs only the ticket and a review now.
		req := !d.Emergency || c.Control == change.ControlTicket || c.Control == change.ControlPeerReview
		if !req && c.Result == change.Pass && len(c.Evidence) == 0 {
			// Waived for the emergency, not met: manager approval is
			// still owed, and nothing showed a staging run.
			c.Result = change.Pending
		}
		r := row{c, req}
		g.rows = append(g.rows, r)
		switch c.Result {
		case change.Pass:
			g.met = append(g.met, r)
		case change.Fail:
			g.missing = append(g.missing, r)
		default: // pending, or a result this package does not know
			g.pending = append(g.pending, r)
			if req {
				g.waiting = append(g.waiting, r)
			}
		}
		if c.Control == change.ControlManagerApproval {
			g.manager = &r
		}
	}
	return g
}

// verdict is the check's status, conclusion and title: failure when a
// required control is missing, the decision says so or nothing was
// evaluated; in progress while a required control or the decision waits;
// success otherwise.
func (g rowGroups) verdict(d change.Decision) (status, conclusion, title string) {
	requiredMissing := 0
	for _, r := range g.missing {
		if r.required {
			requiredMissing++
		}
	}
	switch {
	case requiredMissing > 0 || d.Outcome == change.NonCompliant || len(g.rows) == 0:
		return StatusCompleted, ConclusionFailure, failureTitle(d, g.met, g.missing, g.waiting)
	case len(g.waiting) > 0 || d.Outcome == change.Undecided:
		return StatusInProgress, "", waitingTitle(g.waiting)
	case d.Emergency:
		return StatusCompleted, ConclusionSuccess, emergencyTitle(d, g.met, g.manager)
	default: // compliant, every required control passed
		return StatusCompleted, ConclusionSuccess, fmt.Sprintf("%d of %d controls met", len(g.met), len(g.rows))
	}
}

// open is what an engineer has to act on or wait for: the required
// controls not met, and manager approval, which an emergency change still
// owes.
func (g rowGroups) open() []row {
	var open []row
	for _, r := range append(append([]row(nil), g.missing...), g.pending...) {
		if r.required || r.Control == change.ControlManagerApproval {
			open = append(open, r)
		}
	}
	return open
}

// controlTable writes one table row per control.
func controlTable(b *strings.Builder, d change.Decision, rows []row) {
	if len(rows) == 0 {
		b.WriteString("No control was evaluated, so this change cannot be shown compliant. " +
			"Check the policy's controls.\n\n")
		return
	}
	b.WriteString("| Control | Status | Evidence | Next action |\n| --- | --- | --- | --- |\n")
	for _, r := range rows {
		if b.Len() > MaxOutput {
			break // fit cuts here anyway
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", controlLabel(r.Control), statusCell(d, r), evidenceCell(r.Evidence), actionCell(r))
	}
	b.WriteString("\n")
}

// whatIsMissing writes, for each open control, its reasons and next action.
func whatIsMissing(b *strings.Builder, d change.Decision, open []row) {
	if len(open) == 0 {
		return
	}
	b.WriteString("### What is missing\n\n")
	for _, r := range open {
		if b.Len() > MaxOutput {
			break // fit cuts here anyway
		}
		fmt.Fprintf(b, "**%s** (%s)\n", controlLabel(r.Control), statusWord(d, r))
		reasons := r.Reasons
		if len(reasons) > maxReasons {
			reasons = reasons[:maxReasons]
		}
		for _, reason := range reasons {
			fmt.Fprintf(b, "- %s\n", inline(reason, maxReason))
		}
		if n := len(r.Reasons) - len(reasons); n > 0 {
			fmt.Fprintf(b, "- … and %d more\n", n)
		}
		if r.Fix != "" {
			fmt.Fprintf(b, "- **Next action:** %s\n", inline(r.Fix, maxReason))
		}
		b.WriteString("\n")
	}
}

// ignoredApprovals lists every approval a control did not count, with who
// gave it and why, so that nobody wonders why their approval is missing.
func ignoredApprovals(b *strings.Builder, d change.Decision) {
	started := false
	for _, c := range d.Controls {
		for _, ig := range c.Ignored {
			if b.Len() > MaxOutput {
				return // fit cuts here anyway
			}
			if !started {
				b.WriteString("### Approvals that did not count\n\n")
				started = true
			}
			fmt.Fprintf(b, "- **%s** (%s): %s\n", inline(ig.User, maxCell), strings.ToLower(controlLabel(c.Control)), inline(ig.Why, maxReason))
		}
	}
	if started {
		b.WriteString("\n")
	}
}

func failureTitle(d change.Decision, met, missing, waiting []row) string {
	var t string
	if d.Emergency {
		t = "Emergency change: "
		if len(missing) > 0 {
			t += shortList(missing) + " missing"
		} else {
			t += "not compliant"
		}
	} else {
		t = fmt.Sprintf("%d of %d controls met", len(met), len(d.Controls))
		switch {
		case len(missing) > 0:
			t += ": " + shortList(missing) + " missing"
		case len(d.Controls) == 0:
			t = "No controls evaluated"
		default:
			t += ": not compliant"
		}
	}
	if len(waiting) > 0 {
		t += "; " + shortList(waiting) + " pending"
	}
	return t
}

// waitingTitle names why the check waits: the first reason of the first
// undecided control, which is what an engineer would ask about.
func waitingTitle(waiting []row) string {
	if len(waiting) == 0 {
		return "Waiting: changegate could not decide"
	}
	t := "Waiting: " + shortList(waiting) + " not yet checked"
	if len(waiting[0].Reasons) > 0 {
		t = "Waiting: " + plain(waiting[0].Reasons[0], 120)
		if len(waiting) > 1 {
			t += "; " + shortList(waiting[1:]) + " not yet checked"
		}
	}
	return t
}

func emergencyTitle(d change.Decision, met []row, manager *row) string {
	if manager == nil || manager.Result == change.Pass {
		return "Emergency change: " + shortList(met) + " met"
	}
	var now []row
	for _, r := range met {
		if r.Control != change.ControlManagerApproval {
			now = append(now, r)
		}
	}
	return fmt.Sprintf("Emergency change: %s met; manager approval due within %s", shortList(now), hours(emergencyWindow(d)))
}

func statusWord(d change.Decision, r row) string {
	switch {
	case r.Result == change.Pass:
		return "met"
	case r.Result == change.Fail && r.required:
		return "missing"
	case d.Emergency && r.Control == change.ControlManagerApproval:
		return "due within " + hours(emergencyWindow(d))
	case !r.required:
		return "not required for an emergency change"
	default:
		return "pending"
	}
}

func statusCell(d change.Decision, r row) string {
	icon := "⏳"
	switch {
	case r.Result == change.Pass:
		icon = "✅"
	case !r.required && r.Control != change.ControlManagerApproval:
		icon = "➖"
	case r.Result == change.Fail:
		icon = "❌"
	}
	return icon + " " + statusWord(d, r)
}

func evidenceCell(ev []change.Evidence) string {
	if len(ev) == 0 {
		return "—"
	}
	parts := make([]string, 0, maxCellItems+1)
	for i, e := range ev {
		if i == maxCellItems {
			parts = append(parts, fmt.Sprintf("+%d more (see details)", len(ev)-i))
			break
		}
		parts = append(parts, evidence(e))
	}
	return strings.Join(parts, "<br>")
}

// evidence is "[ref](url) detail", with the link only for http(s) URLs.
func evidence(e change.Evidence) string {
	ref := inline(e.Ref, maxCell)
	if ref == "" {
		ref = inline(e.Kind, maxCell)
	}
	if u := safeURL(e.URL); u != "" && ref != "" {
		ref = "[" + ref + "](" + u + ")"
	}
	if detail := inline(e.Detail, maxCell); detail != "" {
		return ref + " " + detail
	}
	return ref
}

func actionCell(r row) string {
	switch {
	case r.Result == change.Pass || !r.required && r.Control != change.ControlManagerApproval:
		return "—"
	case r.Fix != "":
		return inline(r.Fix, maxCell)
	case r.Result == change.Fail:
		return "See below"
	default:
		return "None: changegate retries automatically"
	}
}

// details is the check run's text: every piece of evidence, per control.
func details(d change.Decision) string {
	var b strings.Builder
	b.WriteString("## Evidence\n\n")
	for _, c := range d.Controls {
		fmt.Fprintf(&b, "### %s\n\n", controlLabel(c.Control))
		if len(c.Evidence) == 0 {
			b.WriteString("No evidence recorded.\n\n")
			continue
		}
		for _, e := range c.Evidence {
			if b.Len() > MaxOutput {
				break // fit cuts here anyway
			}
			fmt.Fprintf(&b, "- %s: %s\n", inline(e.Kind, maxCell), evidence(e))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func notice(s change.Subject, d change.Decision, label, explain string) Output {
	out := Output{Status: StatusCompleted, Conclusion: ConclusionNeutral, Title: label}
	if d.Reason != "" {
		out.Title = clip(label+": "+plain(d.Reason, maxTitle), maxTitle)
	}
	reason := inline(d.Reason, maxReason)
	if reason == "" {
		reason = "no reason given"
	}
	body := header(s) + "**" + label + ":** " + reason + "\n\n" + explain + "\n"
	out.Summary = fit(body, footer(s, d))
	return out
}

func invalidPolicy(s change.Subject, d change.Decision) Output {
	file := ".github/changegate.yml"
	if strings.Contains(d.PolicySource, "changegate.yml") {
		file = d.PolicySource
	}
	out := Output{
		Status:     StatusCompleted,
		Conclusion: ConclusionFailure,
		Title:      clip("Invalid policy: fix "+plain(file, 150), maxTitle),
	}
	var b strings.Builder
	b.WriteString(header(s))
	b.WriteString("changegate could not load the policy, so no control was checked and this change cannot merge.\n\n")
	msg := d.Reason
	if msg == "" {
		msg = "no error given"
	}
	b.WriteString(fence(clip(msg, maxPolicyErr)))
	on := ""
	if s.BaseRef != "" {
		on = " on the base branch " + code(s.BaseRef)
	}
	fmt.Fprintf(&b, "\n**Next action:** fix %s%s. Check it locally with `changegate policy check FILE` before you push.\n",
		code(file), on)
	out.Summary = fit(b.String(), footer(s, d))
	return out
}

// header says which change and commit the check is about.
func header(s change.Subject) string {
	var parts []string
	if s.Number > 0 {
		parts = append(parts, "Pull request #"+strconv.Itoa(s.Number))
	}
	if s.HeadSHA != "" {
		parts = append(parts, "commit "+code(short(s.HeadSHA)))
	}
	if s.BaseRef != "" {
		parts = append(parts, "into "+code(s.BaseRef))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, " · ") + "\n\n"
}

func footer(s change.Subject, d change.Decision) string {
	digest := strings.TrimPrefix(d.PolicyDigest, "sha256:")
	if len(digest) > shortDigestAt {
		digest = digest[:shortDigestAt]
	}
	var parts []string
	if digest != "" {
		parts = append(parts, "policy "+code(digest))
	} else {
		parts = append(parts, "no policy digest")
	}
	if d.PolicySource != "" {
		parts = append(parts, "from "+inline(d.PolicySource, 200))
	}
	if s.HeadSHA != "" {
		parts = append(parts, "evaluated on "+code(short(s.HeadSHA)))
	}
	return "---\n<sub>changegate · " + strings.Join(parts, " · ") + "</sub>\n"
}

// fit keeps body+tail within MaxOutput bytes, cutting body at a line
// boundary and saying so; tail (the footer) always survives.
func fit(body, tail string) string {
	if tail != "" && body != "" && !strings.HasSuffix(body, "\n\n") {
		// A blank line keeps the footer's rule from turning the last
		// paragraph into a heading.
		body = strings.TrimRight(body, "\n") + "\n\n"
	}
	if len(body)+len(tail) <= MaxOutput {
		return body + tail
	}
	note := "\n_… truncated: the rest did not fit in GitHub's 65,535-character limit._\n\n"
	limit := MaxOutput - len(tail) - len(note)
	cut := body[:max(limit, 0)]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	if i := strings.LastIndexByte(cut, '\n'); i > 0 {
		cut = cut[:i+1]
	}
	return cut + note + tail
}

var shortNames = map[string]string{
	change.ControlTicket:          "ticket",
	change.ControlPeerReview:      "review",
	change.ControlStaging:         "staging",
	change.ControlManagerApproval: "manager approval",
}

var labels = map[string]string{
	change.ControlTicket:          "Ticket",
	change.ControlPeerReview:      "Peer review",
	change.ControlStaging:         "Staging",
	change.ControlManagerApproval: "Manager approval",
}

func controlLabel(c string) string {
	if l, ok := labels[c]; ok {
		return l
	}
	l := plain(strings.ReplaceAll(c, "_", " "), 60)
	if l == "" {
		return "Unnamed control"
	}
	r, n := utf8.DecodeRuneInString(l)
	return inline(string(unicode.ToUpper(r))+l[n:], 60)
}

func shortName(c string) string {
	if n, ok := shortNames[c]; ok {
		return n
	}
	return plain(strings.ReplaceAll(c, "_", " "), 40)
}

// shortList is "a", "a and b" or "a, b and c".
func shortList(rows []row) string {
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = shortName(r.Control)
	}
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func hours(d time.Duration) string { return strconv.Itoa(int(d.Hours())) + "h" }

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// plain is user-supplied text on one line, clipped: for titles, which
// GitHub shows as text, not markdown.
func plain(s string, max int) string {
	cut := false
	if limit := 4 * (max + 1); len(s) > limit {
		// No need to look further than max runes could reach.
		s, cut = strings.ToValidUTF8(s[:limit], ""), true
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	s = clip(s, max)
	if cut && !strings.HasSuffix(s, "…") {
		s = clip(s, max-1) + "…"
	}
	return s
}

func clip(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:max-1])) + "…"
}

// inline makes user-supplied text safe inside a markdown table cell or
// list item: one line, markdown metacharacters escaped so it renders
// literally (no links, images, HTML, math, emphasis, nested blocks or
// table breaks), and bare URLs defused so GitHub does not autolink them.
func inline(s string, max int) string {
	s = defuse(plain(s, max))
	var b strings.Builder
	// A leading "-", "+", "#", "=" or "1." would start a block inside a
	// list item.
	if s != "" && strings.ContainsRune("-+#=", rune(s[0])) {
		b.WriteByte('\\')
	} else if d := len(s) - len(strings.TrimLeft(s, "0123456789")); d > 0 && d < len(s) && (s[d] == '.' || s[d] == ')') {
		b.WriteString(s[:d])
		b.WriteByte('\\')
		s = s[d:]
	}
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~&$", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// autolinkRE finds what GitHub would turn into links by itself.
var autolinkRE = regexp.MustCompile(`(?i)(:)(//)|(w)(ww\.)`)

// defuse puts a zero-width space inside "://" and "www." so GitHub does
// not autolink them, escaped or not; the text still reads the same.
func defuse(s string) string {
	return autolinkRE.ReplaceAllString(s, "$1$3\u200b$2$4")
}

// code is text in a code span, with a delimiter longer than any backtick
// run inside it.
func code(s string) string {
	s = plain(s, 200)
	delim := "`"
	for strings.Contains(s, delim) {
		delim += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	s = strings.ReplaceAll(s, "|", "\\|") // a pipe ends a table cell even in code
	return delim + pad + s + pad + delim
}

// fence is a fenced code block that no content can close early.
func fence(s string) string {
	s = strings.TrimRight(s, "\n")
	delim := "```"
	for strings.Contains(s, delim) {
		delim += "`"
	}
	return delim + "text\n" + s + "\n" + delim + "\n"
}

// safeURL returns an http(s) URL fit for a markdown link target, or "".
func safeURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	s := u.String()
	if strings.ContainsAny(s, " \t\r\n<>\"`") {
		return ""
	}
	return strings.NewReplacer("(", "%28", ")", "%29").Replace(s)
}
