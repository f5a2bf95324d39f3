package ghfake

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
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
