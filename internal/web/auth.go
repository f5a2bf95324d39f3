package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// auditorKey is the echo context key of the authenticated token's name.
const auditorKey = "changegate.auditor"

// logAccess logs every request with the token's name, never the token. It
// renders a handler's error itself so that the logged status is the one
// sent.
func (h *Handler) logAccess(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := next(c); err != nil {
			c.Error(err)
		}
		name, _ := c.Get(auditorKey).(string)
		h.log.Info("audit access", "auditor", name, "method", c.Request().Method,
			"path", c.Request().URL.Path, "status", c.Response().Status)
		return nil
	}
}

// apiErrors answers echo's own errors (an unknown route, a method the
// route lacks) in the API's error form.
func (h *Handler) apiErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		var he *echo.HTTPError
		if !errors.As(err, &he) {
			return err
		}
		msg, m := http.StatusText(he.Code), c.Request().Method
		if he.Code == http.StatusNotFound || he.Code == http.StatusMethodNotAllowed {
			msg = "no route " + m + " " + c.Request().URL.Path
			if m != http.MethodGet && m != http.MethodHead {
				msg += ": the audit API is read-only (GET, and POST /api/v1/samples)"
			}
		}
		return c.JSON(he.Code, apiError{msg})
	}
}

// pageErrors shows echo's own errors as a page.
func (h *Handler) pageErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		var he *echo.HTTPError
		if !errors.As(err, &he) {
			return err
		}
		return h.render(c, he.Code, "error", errorPage{Title: http.StatusText(he.Code), Message: "There is no such page."})
	}
}

// requireToken admits API requests that carry a token of the token file.
func (h *Handler) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="changegate audit"`)
			return c.JSON(http.StatusUnauthorized, apiError{"an auditor token is required (Authorization: Bearer cgat_...)"})
		}
		e, err := h.tokens.authenticate(token)
		switch {
		case errors.Is(err, ErrTokensUnavailable):
			return c.JSON(http.StatusServiceUnavailable, apiError{ErrTokensUnavailable.Error()})
		case err != nil:
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="changegate audit", error="invalid_token"`)
			return c.JSON(http.StatusUnauthorized, apiError{errUnauthorized.Error()})
		}
		c.Set(auditorKey, e.name)
		return next(c)
	}
}

func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// sessionCookie is the UI's session cookie. No __Host- prefix: that needs
// Path=/, and the session is for /audit only.
const sessionCookie = "changegate_audit"

// sessions are stateless: the cookie holds the token's name and an expiry,
// MACed with the token's hash. Removing or replacing the token's line in
// the file therefore ends its sessions, with nothing to store.
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

func (s sessions) mac(purpose string, parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// issue returns the cookie of a new session for e.
func (s sessions) issue(e tokenEntry) *http.Cookie {
	exp := s.now().Add(s.ttl).Unix()
	payload := e.name + "|" + strconv.FormatInt(exp, 10)
	sig := s.mac("session", e.name, string(e.hash[:]), strconv.FormatInt(exp, 10))
	value := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(sig)
	c := sessionCookieWith(value)
	c.Expires = time.Unix(exp, 0)
	c.MaxAge = int(s.ttl.Seconds())
	return c
}

func sessionCookieWith(value string) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: value, Path: "/audit", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

var errSession = errors.New("no valid session")

// check returns the name of a session cookie's token, if the session is
// unexpired and its token is still in the file.
func (s sessions) check(value string, tokens *Tokens) (string, error) {
	p, sig, ok := strings.Cut(value, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	name, expText, ok2 := strings.Cut(string(payload), "|")
	exp, err3 := strconv.ParseInt(expText, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || err3 != nil || !s.now().Before(time.Unix(exp, 0)) {
		return "", errSession
	}
	e, err := tokens.lookup(name)
	if errors.Is(err, ErrTokensUnavailable) {
		return "", err
	}
	if err != nil || !hmac.Equal(mac, s.mac("session", e.name, string(e.hash[:]), expText)) {
		return "", errSession
	}
	return e.name, nil
}

// csrf is the form token of a session: it proves the form was served to
// the session's holder.
func (s sessions) csrf(cookie string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", cookie))
}

const csrfKey = "changegate.csrf"

// requireSession admits UI requests of a live session and sends the rest
// to the login page.
func (h *Handler) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		name := ""
		if err == nil {
			name, err = h.sessions.check(ck.Value, h.tokens)
		}
		switch {
		case errors.Is(err, ErrTokensUnavailable):
			return h.render(c, http.StatusServiceUnavailable, "error", errorPage{Message: ErrTokensUnavailable.Error()})
		case err != nil:
			c.SetCookie(expiredSession())
			return c.Redirect(http.StatusSeeOther, "/audit/login")
		}
		c.Set(auditorKey, name)
		c.Set(csrfKey, h.sessions.csrf(ck.Value))
		return next(c)
	}
}

func expiredSession() *http.Cookie {
	c := sessionCookieWith("")
	c.MaxAge = -1
	return c
}

// checkCSRF refuses a form POST whose csrf field is not its session's.
func (h *Handler) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		want, _ := c.Get(csrfKey).(string)
		if want == "" || !hmac.Equal([]byte(c.FormValue("csrf")), []byte(want)) {
			return h.render(c, http.StatusForbidden, "error", errorPage{Message: "This form has expired or came from another site. Go back, reload the page and try again."})
		}
		return next(c)
	}
}

// sameOrigin refuses cross-site POSTs when the browser says where they
// came from. The CSRF field covers browsers that say nothing; the login
// form, which has no session yet, relies on this and SameSite.
func sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		site := r.Header.Get("Sec-Fetch-Site")
		crossSite := site != "" && site != "same-origin" && site != "none"
		if o := r.Header.Get(echo.HeaderOrigin); o != "" {
			u, err := url.Parse(o)
			crossSite = crossSite || err != nil || u.Host != r.Host
		}
		if crossSite {
			return c.String(http.StatusForbidden, "cross-site request refused\n")
		}
		return next(c)
	}
}

// maxForm bounds a UI form's body; the largest, the sample form, is a few
// hundred bytes.
const maxForm = 64 << 10

// limitForm bounds the body of a form POST before anything parses it.
func limitForm(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, maxForm)
		return next(c)
	}
}

// pageHeaders keep UI pages out of frames and caches and forbid scripts:
// the UI has none.
func pageHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Response().Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set(echo.HeaderCacheControl, "no-store")
		return next(c)
	}
}
