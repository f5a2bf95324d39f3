// Package setup registers changegate as a GitHub App by manifest, the flow
// Probot made conventional: /setup posts a manifest to GitHub, GitHub sends
// the browser back to /setup/callback with a one-time code, and the code is
// exchanged for the App's id, key and webhook secret
// (POST /app-manifests/{code}/conversions), which are kept in the data dir.
// It serves only while no App is configured.
package setup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
	"github.com/labstack/echo/v4"
)

// Options configure the handler.
type Options struct {
	// APIURL is the GitHub API the code is exchanged at.
	APIURL string
	// Store keeps the App's credentials (config.StoreApp).
	Store func(id int64, privateKey, webhookSecret string) error
	// Configured says whether an App is configured; /setup is then 404.
	Configured func() bool
	// Done is called once the App is stored, after the answer is sent.
	Done   func()
	Logger *slog.Logger
	Now    func() time.Time
}

// Handler serves /setup and /setup/callback.
type Handler struct {
	o Options

	mu     sync.Mutex
	states map[string]time.Time // state → when it was made
}

// stateTTL is how long a registration may take: GitHub's code itself is
// good for an hour.
const stateTTL = time.Hour

// New returns the handler.
func New(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{o: o, states: map[string]time.Time{}}
}

// Register mounts the routes.
func (h *Handler) Register(e *echo.Echo) {
	g := e.Group("/setup", h.onlyUnconfigured)
	g.GET("", h.form)
	g.POST("", h.start)
	g.GET("/callback", h.callback)
}

func (h *Handler) onlyUnconfigured(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if h.o.Configured() {
			return echo.ErrNotFound
		}
		c.Response().Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *")
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		return next(c)
	}
}

func (h *Handler) form(c echo.Context) error {
	public := c.Scheme() + "://" + c.Request().Host
	return render(c, http.StatusOK, "form", formView{Public: public, GitHub: "https://github.com", Permissions: permissionRows})
}

// start builds the manifest and the page whose form posts it to GitHub.
func (h *Handler) start(c echo.Context) error {
	in, err := readForm(c)
	if err != nil {
		return render(c, http.StatusBadRequest, "error", errorView{Message: err.Error()})
	}
	manifest, err := json.Marshal(Manifest(in.public))
	if err != nil {
		return err
	}
	state, err := h.newState()
	if err != nil {
		return err
	}
	action := in.github + "/settings/apps/new"
	if in.org != "" {
		action = in.github + "/organizations/" + url.PathEscape(in.org) + "/settings/apps/new"
	}
	return render(c, http.StatusOK, "post", postView{Action: action + "?state=" + url.QueryEscape(state), Manifest: string(manifest)})
}

type formInput struct{ github, public, org string }

func readForm(c echo.Context) (formInput, error) {
	in := formInput{github: strings.TrimSuffix(c.FormValue("github"), "/"), public: strings.TrimSuffix(c.FormValue("public"), "/")}
	if c.FormValue("account") == "organization" {
		in.org = strings.TrimSpace(c.FormValue("org"))
		if in.org == "" {
			return in, errors.New("name the organisation the App is created for")
		}
	}
	for name, v := range map[string]string{"GitHub URL": in.github, "public URL of this server": in.public} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return in, fmt.Errorf("the %s %q is not an http(s) URL", name, v)
		}
	}
	return in, nil
}

func (h *Handler) newState() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := hex.EncodeToString(b)
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, at := range h.states {
		if h.o.Now().Sub(at) > stateTTL {
			delete(h.states, k)
		}
	}
	h.states[s] = h.o.Now()
	return s, nil
}

// takeState consumes a state: each is good once, within stateTTL.
func (h *Handler) takeState(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.states[s]
	delete(h.states, s)
	return ok && h.o.Now().Sub(at) <= stateTTL
}

// callback exchanges GitHub's one-time code for the App and keeps it.
func (h *Handler) callback(c echo.Context) error {
	code, state := c.QueryParam("code"), c.QueryParam("state")
	if code == "" || !h.takeState(state) {
		h.o.Logger.Warn("setup callback refused: unknown, used or expired state")
		return render(c, http.StatusBadRequest, "error", errorView{Message: "This registration link is not one this server started, or it was used already. Start again at /setup."})
	}
	app, err := h.convert(c.Request().Context(), code)
	if err != nil {
		h.o.Logger.Error("setup: the manifest code could not be exchanged", "error", err)
		return render(c, http.StatusBadGateway, "error", errorView{Message: "GitHub did not give the App's credentials: " + err.Error() + ". Nothing was stored; start again at /setup."})
	}
	if err := h.o.Store(app.GetID(), app.GetPEM(), app.GetWebhookSecret()); err != nil {
		return err
	}
	h.o.Logger.Info("GitHub App registered by manifest", "app_id", app.GetID(), "slug", app.GetSlug())
	if h.o.Done != nil {
		defer func() { go h.o.Done() }()
	}
	return render(c, http.StatusOK, "done", doneView{Slug: app.GetSlug(), InstallURL: strings.TrimSuffix(app.GetHTMLURL(), "/") + "/installations/new"})
}

// convert calls POST /app-manifests/{code}/conversions, which needs no
// authentication: the code is the credential.
func (h *Handler) convert(ctx context.Context, code string) (*github.AppConfig, error) {
	client := github.NewClient(nil)
	base, err := url.Parse(strings.TrimSuffix(h.o.APIURL, "/") + "/")
	if err != nil {
		return nil, err
	}
	client.BaseURL = base
	app, _, err := client.Apps.CompleteAppManifest(ctx, url.PathEscape(code))
	if err != nil {
		return nil, err
	}
	if app.GetID() == 0 || !strings.Contains(app.GetPEM(), "PRIVATE KEY") || app.GetWebhookSecret() == "" {
		return nil, errors.New("the answer lacks the App id, its private key or its webhook secret")
	}
	return app, nil
}
