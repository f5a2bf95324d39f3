package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Answer is changegate's answer to a deployment protection rule.
type Answer struct {
	State       string `json:"state"` // approved or rejected
	Environment string `json:"environment_name"`
	Comment     string `json:"comment"`
}

// Answer states, as GitHub names them.
const (
	Approved = "approved"
	Rejected = "rejected"
)

// ErrForeignCallback marks a callback URL that is not an operation of the
// GitHub API the client talks to: it is never called, since a webhook
// payload must not be able to point changegate's token elsewhere (SSRF).
var ErrForeignCallback = errors.New("deployment callback URL is not under the GitHub API URL")

// AnswerDeployment posts a to the request's callback URL
// (POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule).
// go-github v60 has no typed call for it, so it is a raw request on the
// same client, with the same authentication, retries and metrics.
func AnswerDeployment(ctx context.Context, client *github.Client, callback string, a Answer) error {
	u, err := callbackURL(client.BaseURL, callback)
	if err != nil {
		return err
	}
	req, err := client.NewRequest(http.MethodPost, u.String(), a)
	if err != nil {
		return fmt.Errorf("answer deployment: %w", err)
	}
	if _, err := client.Do(ctx, req, nil); err != nil {
		return fmt.Errorf("answer deployment %s: %w", u.Path, err)
	}
	return nil
}

// callbackURL checks that callback is the protection-rule operation of a
// repository's workflow run on the API at base.
func callbackURL(base *url.URL, callback string) (*url.URL, error) {
	u, err := url.Parse(callback)
	if err != nil || u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: %q", ErrForeignCallback, callback)
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), strings.TrimSuffix(base.EscapedPath(), "/")+"/repos/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 6 || parts[2] != "actions" || parts[3] != "runs" || parts[5] != "deployment_protection_rule" ||
		parts[0] == "" || parts[1] == "" || strings.Contains(rest, "..") || strings.Trim(parts[4], "0123456789") != "" || parts[4] == "" {
		return nil, fmt.Errorf("%w: %q", ErrForeignCallback, callback)
	}
	return u, nil
}
