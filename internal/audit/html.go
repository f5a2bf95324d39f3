package audit

import (
	"bytes"
	"embed"
	"encoding/hex"
	"html/template"
	"strings"

	"github.com/changegate/changegate/internal/change"
)

//go:embed templates/record.html
var templates embed.FS

var recordTemplate = template.Must(template.New("record.html").Funcs(template.FuncMap{
	"hex":     hex.EncodeToString,
	"title":   controlTitle,
	"join":    strings.Join,
	"orDash":  orDash,
	"lower":   strings.ToLower,
	"exState": func(s string) string { return orDash(s) },
}).ParseFS(templates, "templates/record.html"))

// RecordHTML renders a record as a printable, self-contained page that
// reads like a change ticket: who asked, who reviewed, what ran in
// staging, who approved and when, and the exceptions. It has no external
// asset and no script. Every text is escaped: titles and Jira text are
// written by whoever opens a pull request.
func RecordHTML(v *RecordView) ([]byte, error) {
	var b bytes.Buffer
	if err := recordTemplate.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RecordBody renders the same content as RecordHTML without the page
// around it, for the web UI.
func RecordBody(v *RecordView) (template.HTML, error) {
	var b bytes.Buffer
	if err := recordTemplate.ExecuteTemplate(&b, "body", v); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil // the template escaped it
}

// RecordStyle is the CSS of the record's content.
func RecordStyle() (template.CSS, error) {
	var b bytes.Buffer
	if err := recordTemplate.ExecuteTemplate(&b, "style", nil); err != nil {
		return "", err
	}
	return template.CSS(b.String()), nil
}

func controlTitle(c string) string {
	switch c {
	case change.ControlTicket:
		return "Ticket"
	case change.ControlPeerReview:
		return "Peer review"
	case change.ControlStaging:
		return "Staging"
	case change.ControlManagerApproval:
		return "Manager approval"
	}
	return c
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
