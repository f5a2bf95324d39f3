// Package jira reads Jira issues live for the ticket control and turns them
// into change.Ticket values. It speaks go-jira (REST v2) inside and only
// change types and the standard library outside.
//
// Jira Cloud authenticates with an account email and an API token (basic
// auth); Data Center with a personal access token sent as a Bearer token.
// Cloud answers 404 both for an issue the account may not see and for wrong
// credentials, so Verify checks the credentials at start-up and Lookup
// confirms every 404 the same way: "ticket missing" must never really be
// "we are locked out".
package jira

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gojira "github.com/andygrunwald/go-jira"

	"github.com/changegate/changegate/internal/change"
)

// DefaultTimeout bounds every request when Options.HTTPClient sets none.
const DefaultTimeout = 10 * time.Second

// Errors returned by Verify, to be checked with errors.Is.
var (
	// ErrLockedOut means Jira answered but will not let us read it: wrong
	// credentials, an expired token, or a URL that is not Jira's. Retrying
	// does not help; an operator must fix the configuration.
	ErrLockedOut = errors.New("jira: locked out")
	// ErrUnreachable means Jira did not answer usefully (connection error,
	// timeout, 429, 5xx). Retrying later may help.
	ErrUnreachable = errors.New("jira: unreachable")
)

// IsUnreachable reports whether any lookup could not be decided because
// Jira was down, rate limited or refused us. The job that made them should
// be retried; its check stays pending meanwhile.
func IsUnreachable(lookups ...change.TicketLookup) bool {
	for _, l := range lookups {
		if l.Result == change.LookupUnreachable {
			return true
		}
	}
	return false
}

// Config says where Jira is and who we are.
type Config struct {
	URL string // base URL, e.g. https://acme.atlassian.net or https://jira.acme.com/jira
	// User is the Cloud account's email address. Leave it empty for Data
	// Center, where Token is a personal access token.
	User  string
	Token string
}

// String never shows the token.
func (c Config) String() string {
	return fmt.Sprintf("jira.Config{URL: %q, User: %q, Token: %s}", c.URL, c.User, redacted(c.Token))
}

// LogValue never shows the token.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.URL), slog.String("user", c.User), slog.String("token", redacted(c.Token)))
}

func redacted(s string) string {
	if s == "" {
		return "(empty)"
	}
	return "(redacted)"
}

// Options are the collaborators of a Client.
type Options struct {
	// HTTPClient supplies the base transport, timeout and cookie jar. Nil
	// means a client with DefaultTimeout; a zero Timeout also gets it, so a
	// hung Jira never holds a worker forever.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Client reads issues from one Jira site. It is safe for concurrent use.
type Client struct {
	base   string // without trailing slash
	mode   string // "cloud" (basic) or "data center" (bearer)
	jc     *gojira.Client
	log    *slog.Logger
	expiry time.Duration // client timeout, for messages
}

// New validates cfg and returns a client. It makes no request; call Verify.
func New(cfg Config, opts Options) (*Client, error) {
	raw := strings.TrimSpace(cfg.URL)
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return nil, errors.New("jira: URL is required")
	case err != nil:
		return nil, fmt.Errorf("jira: URL %q: %w", raw, err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, fmt.Errorf("jira: URL %q is not an absolute http(s) URL", raw)
	case u.User != nil:
		return nil, errors.New("jira: URL must not carry credentials; set the user and token instead")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("jira: URL %q must not have a query or fragment", raw)
	}
	// Secrets read from files often end in a newline.
	user, token := strings.TrimSpace(cfg.User), strings.TrimSpace(cfg.Token)
	if token == "" {
		return nil, errors.New("jira: token is required (Cloud: API token with the account email as user; Data Center: personal access token)")
	}
	if strings.ContainsFunc(token+user, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, errors.New("jira: user or token contains control characters")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	base := u.String()

	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	timeout := hc.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var auth http.RoundTripper
	mode := "data center"
	if user != "" {
		mode = "cloud"
		auth = &gojira.BasicAuthTransport{Username: user, Password: token, Transport: hc.Transport}
	} else {
		auth = &gojira.BearerAuthTransport{Token: token, Transport: hc.Transport}
	}
	authed := &http.Client{
		Transport:     auth,
		Timeout:       timeout,
		Jar:           hc.Jar,
		CheckRedirect: sameHostOnly(u.Host, hc.CheckRedirect),
	}
	jc, err := gojira.NewClient(authed, base+"/")
	if err != nil {
		return nil, fmt.Errorf("jira: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{base: base, mode: mode, jc: jc, log: log, expiry: timeout}, nil
}

// sameHostOnly refuses redirects that leave Jira's host: the auth
// transports add the credentials to every request, including one to a
// host a redirect names.
func sameHostOnly(host string, next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// BaseURL is Jira's base URL without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// myself is the part of GET /rest/api/2/myself we read.
type myself struct {
	AccountID   string `json:"accountId"` // Cloud
	Name        string `json:"name"`      // Data Center
	Key         string `json:"key"`
	DisplayName string `json:"displayName"`
}

// Verify checks once at start-up that Jira accepts our credentials. Errors
// wrap ErrLockedOut (fix the configuration) or ErrUnreachable (try later).
func (c *Client) Verify(ctx context.Context) error {
	var me myself
	status, header, err := c.getJSON(ctx, "rest/api/2/myself", &me)
	if err := c.checkMyself(status, header, err, me); err != nil {
		return err
	}
	c.log.InfoContext(ctx, "jira credentials verified", slog.String("jira_url", c.base),
		slog.String("auth", c.mode), slog.String("jira_account", firstOf(me.DisplayName, me.AccountID, me.Name)))
	return nil
}

func (c *Client) checkMyself(status int, header http.Header, err error, me myself) error {
	hint := "check CHANGEGATE_JIRA_USER and CHANGEGATE_JIRA_TOKEN (Cloud: account email and API token; Data Center: empty user and a personal access token)"
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return lockedOut("%s at GET /rest/api/2/myself; %s", c.problem(status, header, nil), hint)
	case status == http.StatusNotFound:
		return lockedOut("Jira answered 404 for GET /rest/api/2/myself: CHANGEGATE_JIRA_URL %s is not a Jira base URL, or the credentials are wrong; %s", c.base, hint)
	case status >= 200 && status < 300 && err != nil:
		return lockedOut("%s did not answer GET /rest/api/2/myself like Jira (%s); check CHANGEGATE_JIRA_URL", c.base, shortErr(err))
	case status >= 200 && status < 300 && me.AccountID == "" && me.Name == "" && me.Key == "":
		return lockedOut("GET /rest/api/2/myself named no account: Jira treats us as anonymous; %s", hint)
	case err != nil, status < 200 || status >= 300:
		return &verifyError{kind: ErrUnreachable, msg: c.problem(status, header, err)}
	}
	return nil
}

// verifyError reads as its message alone and matches its kind with errors.Is.
type verifyError struct {
	kind error
	msg  string
}

func (e *verifyError) Error() string { return e.msg }
func (e *verifyError) Unwrap() error { return e.kind }

func lockedOut(format string, args ...any) error {
	return &verifyError{kind: ErrLockedOut, msg: fmt.Sprintf(format, args...)}
}

// getJSON GETs path (relative to the base URL) through go-jira and decodes
// a 2xx body into v. status is 0 when no response came.
func (c *Client) getJSON(ctx context.Context, path string, v any) (status int, header http.Header, err error) {
	req, err := c.jc.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.jc.Do(req, v)
	if resp == nil {
		return 0, nil, err
	}
	if err != nil && (resp.StatusCode < 200 || resp.StatusCode >= 300) {
		// go-jira leaves the body of an error response open.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}
	return resp.StatusCode, resp.Header, err
}

// problem says in one line why a call gave no usable answer. It never
// quotes Jira's body, which can be a whole HTML page.
func (c *Client) problem(status int, header http.Header, err error) string {
	switch {
	case status == 0:
		return c.transportProblem(err)
	case status == http.StatusUnauthorized:
		return "Jira refused our credentials (401)"
	case status == http.StatusForbidden:
		// After failed logins Jira demands a CAPTCHA and answers 403 to the API.
		if strings.Contains(header.Get("X-Seraph-LoginReason"), "AUTHENTICATION_DENIED") {
			return "Jira refused our credentials (403): the account must pass a CAPTCHA after failed logins; log in once in a browser"
		}
		return "Jira refused our credentials or permissions (403)"
	case status == http.StatusTooManyRequests:
		if ra := retryAfter(header); ra != "" {
			return "Jira rate limited us (429), retry after " + ra
		}
		return "Jira rate limited us (429)"
	case status >= 200 && status < 300:
		return fmt.Sprintf("Jira sent a malformed response: %v", shortErr(err))
	case status >= 300 && status < 400:
		return fmt.Sprintf("Jira answered %d, a redirect to %q; check CHANGEGATE_JIRA_URL", status, header.Get("Location"))
	default:
		return fmt.Sprintf("Jira answered %d", status)
	}
}

func (c *Client) transportProblem(err error) string {
	var ue *url.Error
	inner := err
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	switch {
	case inner == nil:
		return "Jira unreachable"
	case errors.Is(err, context.Canceled):
		return "Jira lookup cancelled"
	case errors.Is(err, context.DeadlineExceeded), ue != nil && ue.Timeout():
		return fmt.Sprintf("Jira did not answer in time (limit %s): %v", c.expiry, inner)
	default:
		return "Jira unreachable: " + inner.Error()
	}
}

func retryAfter(h http.Header) string {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return ""
	}
	if n, err := strconv.Atoi(v); err == nil {
		return (time.Duration(n) * time.Second).String()
	}
	return v
}

// shortErr trims go-jira's wrapped messages to the decoder's complaint.
func shortErr(err error) string {
	if err == nil {
		return "empty"
	}
	// go-jira appends the error of re-reading the body it already closed.
	s := strings.TrimSuffix(err.Error(), ": http: read on closed response body")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
