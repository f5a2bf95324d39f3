package ghfake

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
)

// ManifestApp is what converting a manifest code registers: this fake's
// App, with its key, and secrets the fake makes up.
const (
	ManifestWebhookSecret = "fake-webhook-secret-from-the-manifest-flow"
	ManifestClientSecret  = "fake-client-secret"
)

func (s *Server) manifestRoutes() {
	s.Handle("POST", "/app-manifests/{code}/conversions", s.convertManifest)
	// The web side of the flow, on github.com rather than the API: the
	// manifest form lands on a page where the admin confirms, and GitHub
	// sends the browser back to the manifest's redirect_url with a code.
	s.web.HandleFunc("POST /settings/apps/new", s.newAppPage)
	s.web.HandleFunc("POST /organizations/{org}/settings/apps/new", s.newAppPage)
	s.web.HandleFunc("POST /settings/apps/create", s.createApp)
	s.web.HandleFunc("GET /favicon.ico", http.NotFound) // what a browser asks for first
}

// AppManifest is the part of a manifest the fake reads.
type AppManifest struct {
	Name           string               `json:"name"`
	URL            string               `json:"url"`
	RedirectURL    string               `json:"redirect_url"`
	HookAttributes struct{ URL string } `json:"hook_attributes"`
	Permissions    map[string]string    `json:"default_permissions"`
	Events         []string             `json:"default_events"`
}

// CreatedApps are the manifests that were confirmed on the fake's pages,
// in order, with the account they were created for ("" for a personal
// account).
func (s *Server) CreatedApps() []CreatedApp {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CreatedApp(nil), s.createdApps...)
}

// CreatedApp is one confirmed manifest.
type CreatedApp struct {
	Org      string
	Manifest AppManifest
}

var newAppTemplate = template.Must(template.New("new").Parse(`<!doctype html><html><head><title>Create GitHub App</title></head><body>
<h1>Create GitHub App{{if .Org}} for {{.Org}}{{end}}</h1>
<p id="app-name">{{.Manifest.Name}}</p><p id="hook-url">{{.Manifest.HookAttributes.URL}}</p>
<form method="post" action="/settings/apps/create">
<input type="hidden" name="manifest" value="{{.Raw}}"><input type="hidden" name="state" value="{{.State}}"><input type="hidden" name="org" value="{{.Org}}">
<button id="create" type="submit">Create GitHub App</button></form></body></html>`))

// newAppPage is github.com's "Create GitHub App" page for a posted
// manifest. A manifest without its URLs is refused, as GitHub does.
func (s *Server) newAppPage(w http.ResponseWriter, r *http.Request) {
	raw := r.PostFormValue("manifest")
	m, ok := parseManifest(raw)
	if !ok {
		http.Error(w, "Invalid GitHub App configuration", http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = newAppTemplate.Execute(w, map[string]any{"Org": r.PathValue("org"), "Manifest": m, "Raw": raw, "State": r.URL.Query().Get("state")})
}

func parseManifest(raw string) (AppManifest, bool) {
	var m AppManifest
	if json.Unmarshal([]byte(raw), &m) != nil {
		return m, false
	}
	for _, u := range []string{m.URL, m.RedirectURL, m.HookAttributes.URL} {
		if p, err := url.Parse(u); err != nil || p.Host == "" {
			return m, false
		}
	}
	return m, true
}

// createApp confirms the App: it mints the one-time code and sends the
// browser to the manifest's redirect_url with it and the state.
func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	m, ok := parseManifest(r.PostFormValue("manifest"))
	if !ok {
		http.Error(w, "Invalid GitHub App configuration", http.StatusUnprocessableEntity)
		return
	}
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	code := hex.EncodeToString(b)
	s.AddManifestCode(code)
	s.mu.Lock()
	s.createdApps = append(s.createdApps, CreatedApp{Org: r.PostFormValue("org"), Manifest: m})
	s.mu.Unlock()
	back, _ := url.Parse(m.RedirectURL)
	q := back.Query()
	q.Set("code", code)
	q.Set("state", r.PostFormValue("state"))
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// AddManifestCode makes code a one-time code that GitHub would send back
// to the manifest's redirect URL after the App was created.
func (s *Server) AddManifestCode(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manifestCodes == nil {
		s.manifestCodes = map[string]bool{}
	}
	s.manifestCodes[code] = true
}

// convertManifest answers POST /app-manifests/{code}/conversions as GitHub
// does, once per code: the new App's id, key and secrets, 201. An unknown
// or used code is a 404.
func (s *Server) convertManifest(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	s.mu.Lock()
	ok := s.manifestCodes[code]
	delete(s.manifestCodes, code)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	der := x509.MarshalPKCS1PrivateKey(s.key)
	WriteJSON(w, http.StatusCreated, map[string]any{
		"id": s.appID, "slug": appSlug, "node_id": "A_" + strconv.FormatInt(s.appID, 10), "name": appSlug,
		"owner":     map[string]any{"login": "acme", "id": 1, "type": "Organization"},
		"html_url":  "https://github.com/apps/" + appSlug,
		"client_id": "Iv1.fake", "client_secret": ManifestClientSecret, "webhook_secret": ManifestWebhookSecret,
		"pem":         string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})),
		"permissions": map[string]string{"checks": "write"}, "events": []string{"pull_request"},
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
	})
}
