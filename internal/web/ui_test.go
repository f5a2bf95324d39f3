package web

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/audit"
)

// login signs in with token and returns the session cookie.
func (f *fixture) login(t *testing.T, token string) *http.Cookie {
	t.Helper()
	r := f.do(t, request{method: http.MethodPost, path: "/audit/login", body: url.Values{"token": {token}}.Encode(),
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {f.srv.URL}, "Sec-Fetch-Site": {"same-origin"}}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/audit/" {
		t.Fatalf("login: status %d, location %q: %s", r.code, r.header.Get("Location"), r.body)
	}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

// page is a GET of the UI with a session.
func (f *fixture) page(t *testing.T, path string, session *http.Cookie) response {
	t.Helper()
	h := http.Header{}
	if session != nil {
		h.Set("Cookie", session.Name+"="+session.Value)
	}
	return f.do(t, request{path: path, header: h})
}

// form POSTs a UI form with a session, from the same origin.
func (f *fixture) form(t *testing.T, path string, session *http.Cookie, v url.Values, extra http.Header) response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {session.Name + "=" + session.Value},
		"Origin": {f.srv.URL}, "Sec-Fetch-Site": {"same-origin"}}
	for k, vs := range extra {
		h[k] = vs
	}
	return f.do(t, request{method: http.MethodPost, path: path, body: v.Encode(), header: h})
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, r response) string {
	t.Helper()
	m := csrfField.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no csrf field in %s", r.body)
	}
	return string(m[1])
}

func TestLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	if r := f.page(t, "/audit/", nil); r.code != http.StatusSeeOther || r.header.Get("Location") != "/audit/login" {
		t.Errorf("no session: status %d, location %q", r.code, r.header.Get("Location"))
	}
	if r := f.page(t, "/audit/login", nil); r.code != http.StatusOK || !bytes.Contains(r.body, []byte(`name="token"`)) {
		t.Errorf("login form: %d %s", r.code, r.body)
	}
	bad := f.do(t, request{method: http.MethodPost, path: "/audit/login", body: "token=cgat_nope",
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
	if bad.code != http.StatusUnauthorized || !bytes.Contains(bad.body, []byte("not valid")) || !bytes.Contains(bad.body, []byte(`name="token"`)) {
		t.Errorf("wrong token: %d %s", bad.code, bad.body)
	}
	cross := f.do(t, request{method: http.MethodPost, path: "/audit/login", body: "token=" + f.tokens["bob"],
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"cross-site"}}})
	if cross.code != http.StatusForbidden {
		t.Errorf("cross-site login: %d", cross.code)
	}

	c := f.login(t, f.tokens["bob"])
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/audit" {
		t.Errorf("cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/audit", c)
	}
	if strings.Contains(c.Value, f.tokens["bob"]) {
		t.Error("the cookie holds the token")
	}
	r := f.page(t, "/audit/", c)
	if r.code != http.StatusOK || !bytes.Contains(r.body, []byte("Signed in as <strong>bob</strong>")) {
		t.Fatalf("dashboard: %d %s", r.code, r.body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if r.header.Get(h) == "" {
			t.Errorf("page lacks %s", h)
		}
	}
	if bytes.Contains(r.body, []byte("<script")) {
		t.Error("a page has a script")
	}

	out := f.form(t, "/audit/logout", c, url.Values{"csrf": {csrfOf(t, r)}}, nil)
	if out.code != http.StatusSeeOther || !strings.Contains(out.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d %v", out.code, out.header)
	}
}

// TestSessionEnds: a session ends when its token is revoked, and after 12h.
func TestSessionEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	alice, bob := f.login(t, f.tokens["alice@audit-firm.example"]), f.login(t, f.tokens["bob"])
	f.writeTokens(t, strings.Join(slicesDeleteLine(readFile(t, f.tokenFile), "bob "), "\n"))
	if r := f.page(t, "/audit/", bob); r.code != http.StatusSeeOther {
		t.Errorf("revoked bob's session: status %d", r.code)
	}
	if r := f.page(t, "/audit/", alice); r.code != http.StatusOK {
		t.Errorf("alice's session: status %d", r.code)
	}
	forged := *alice
	forged.Value = strings.Replace(forged.Value, forged.Value[:4], "Ym9i", 1) // "bob" in base64
	if r := f.page(t, "/audit/", &forged); r.code != http.StatusSeeOther {
		t.Errorf("forged session: status %d", r.code)
	}
	f.clock.advance(12*time.Hour + time.Second)
	if r := f.page(t, "/audit/", alice); r.code != http.StatusSeeOther {
		t.Errorf("expired session: status %d", r.code)
	}
}

func slicesDeleteLine(content, prefix string) []string {
	var kept []string
	for _, l := range strings.Split(content, "\n") {
		if !strings.HasPrefix(l, prefix) {
			kept = append(kept, l)
		}
	}
	return kept
}

func TestPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.login(t, f.tokens["bob"])
	tests := []struct {
		name, path string
		code       int
		want       []string
	}{
		{"dashboard", "/audit/", http.StatusOK, []string{"2026-01", "2026-02", "2026-03", "100.0%", "Open exceptions", "late", "bypass", "/audit/changes?from=2026-02-01&amp;to=2026-03-01"}},
		{"population default period", "/audit/changes", http.StatusOK, []string{`value="2025-04-01"`, `value="2026-04-01"`, "Records 1–8 of 8", "/audit/changes/" + f.ids[0]}},
		{"population filtered", "/audit/changes?from=2026-02-01&to=2026-03-01&type=bypass", http.StatusOK, []string{"Records 1–1 of 1", "acme/web #104", `value="bypass" checked`}},
		{"population bad filter", "/audit/changes?from=2026-03-01&to=2026-02-01", http.StatusBadRequest, []string{"The filter is not valid: from"}},
		{"record", "/audit/changes/" + f.ids[2], http.StatusOK, []string{"acme/api #103", "PAY-103", "Paula", "bob", "Manager approval", "Inclusion proof", "Signed envelope", "payloadType", "closed"}},
		{"unknown record", "/audit/changes/" + strings.Repeat("f", 32), http.StatusNotFound, []string{"no record with id"}},
		{"record download", "/audit/changes/" + f.ids[2] + "/record.html", http.StatusOK, []string{"<!doctype html>", "PAY-103"}},
		{"envelope download", "/audit/changes/" + f.ids[2] + "/envelope.json", http.StatusOK, []string{`"payloadType"`}},
		{"sample form", "/audit/sample", http.StatusOK, []string{`name="csrf"`, `value="8"`, "weekly (5)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := f.page(t, tc.path, c)
			if r.code != tc.code {
				t.Fatalf("status %d, want %d: %s", r.code, tc.code, r.body)
			}
			for _, w := range tc.want {
				if !bytes.Contains(r.body, []byte(w)) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
}

func TestPopulationPages(t *testing.T) {
	t.Parallel()
	var changes []fixtureChange
	for i := range 120 {
		changes = append(changes, fixtureChange{"acme/api", 1000 + i, date(2026, 1, 1).Add(time.Duration(i) * time.Hour), "standard", -1})
	}
	big := newFixture(t, changes)
	c := big.login(t, big.tokens["bob"])
	r := big.page(t, "/audit/changes?from=2026-01-01&to=2026-02-01", c)
	if !bytes.Contains(r.body, []byte("Records 1–50 of 120")) {
		t.Fatalf("first page: %s", r.body)
	}
	next := regexp.MustCompile(`id="next" href="([^"]+)"`).FindSubmatch(r.body)
	if next == nil {
		t.Fatal("no next link")
	}
	r = big.page(t, strings.ReplaceAll(string(next[1]), "&amp;", "&"), c)
	if !bytes.Contains(r.body, []byte("Records 51–100 of 120")) || !bytes.Contains(r.body, []byte("First page")) {
		t.Errorf("second page: %s", r.body)
	}
}

func TestSampleForm(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := f.login(t, f.tokens["bob"])
	form := f.page(t, "/audit/sample", c)
	good := url.Values{"csrf": {csrfOf(t, form)}, "from": {"2026-01-01"}, "to": {"2026-04-01"}, "checkpoint": {"8"},
		"frequency": {"weekly"}, "seed": {"fy2026"}, "include_exceptions": {"1"}}

	r := f.form(t, "/audit/sample", c, good, nil)
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/zip" || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("sample: %d %v %.300s", r.code, r.header, r.body)
	}
	if _, err := audit.VerifyPackage(bytes.NewReader(r.body), int64(len(r.body)), audit.TrustedKey{Public: f.pub}); err != nil {
		t.Errorf("package: %v", err)
	}

	tests := []struct {
		name   string
		edit   func(url.Values)
		header http.Header
		code   int
		want   string
	}{
		{"no csrf", func(v url.Values) { v.Del("csrf") }, nil, http.StatusForbidden, "expired"},
		{"other session's csrf", func(v url.Values) { v.Set("csrf", "AAAA") }, nil, http.StatusForbidden, "expired"},
		{"cross-site", nil, http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden, "cross-site"},
		{"other origin", nil, http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": nil}, http.StatusForbidden, "cross-site"},
		{"no seed", func(v url.Values) { v.Del("seed") }, nil, http.StatusBadRequest, "The sample cannot be drawn: seed"},
		{"bad size", func(v url.Values) { v.Set("size", "many"); v.Del("frequency") }, nil, http.StatusBadRequest, "size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := url.Values{}
			for k, vs := range good {
				v[k] = append([]string(nil), vs...)
			}
			if tc.edit != nil {
				tc.edit(v)
			}
			r := f.form(t, "/audit/sample", c, v, tc.header)
			if r.code != tc.code || !bytes.Contains(r.body, []byte(tc.want)) {
				t.Errorf("status %d, want %d with %q: %s", r.code, tc.code, tc.want, r.body)
			}
		})
	}
}

func TestEmptyLedgerPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, []fixtureChange{})
	c := f.login(t, f.tokens["bob"])
	if r := f.page(t, "/audit/", c); r.code != http.StatusOK || !bytes.Contains(r.body, []byte("no records yet")) {
		t.Errorf("dashboard: %d %s", r.code, r.body)
	}
	if r := f.page(t, "/audit/changes", c); r.code != http.StatusConflict || !bytes.Contains(r.body, []byte("no records yet")) {
		t.Errorf("population: %d %s", r.code, r.body)
	}
}
