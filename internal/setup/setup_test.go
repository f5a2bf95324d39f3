package setup

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
)

// TestManifestIsTheShippedOne: /setup asks for what
// deploy/github-app-manifest.json asks for.
func TestManifestIsTheShippedOne(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "github-app-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var shipped AppManifest
	if err := json.Unmarshal(data, &shipped); err != nil {
		t.Fatal(err)
	}
	got := Manifest("https://cg.example")
	if diff := cmp.Diff(shipped.DefaultPermissions, got.DefaultPermissions); diff != "" {
		t.Errorf("permissions (-shipped +setup):\n%s", diff)
	}
	slices.Sort(shipped.DefaultEvents)
	if diff := cmp.Diff(shipped.DefaultEvents, got.DefaultEvents); diff != "" {
		t.Errorf("events (-shipped +setup):\n%s", diff)
	}
	if got.HookAttributes.URL != "https://cg.example/webhooks/github" || got.RedirectURL != "https://cg.example/setup/callback" {
		t.Errorf("URLs: %+v", got)
	}
}

// TestCallbackGitHubRefuses: a code GitHub refuses (404, 422) or a
// conversion answer without the App's key is a clear page, nothing is
// stored, and /setup stays open.
func TestCallbackGitHubRefuses(t *testing.T) {
	t.Parallel()
	for name, answer := range map[string]struct {
		status int
		body   string
	}{
		"no key":        {http.StatusCreated, `{"id": 7, "slug": "changegate", "webhook_secret": "s"}`},
		"unknown code":  {http.StatusNotFound, `{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}`},
		"expired code":  {http.StatusUnprocessableEntity, `{"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}`},
		"not even JSON": {http.StatusCreated, `<html>`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(answer.status)
				w.Write([]byte(answer.body))
			}))
			t.Cleanup(gh.Close)
			stored := false
			h := New(Options{APIURL: gh.URL, Store: func(int64, string, string) error { stored = true; return nil }, Configured: func() bool { return false }})
			e := echo.New()
			h.Register(e)
			state, err := h.newState()
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/setup/callback?code=x&state="+state, nil))
			if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "Nothing was stored") || stored {
				t.Errorf("callback: %d stored=%v\n%s", rec.Code, stored, rec.Body.String())
			}
			rec = httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/setup", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("/setup after a failed callback: %d", rec.Code)
			}
		})
	}
}
