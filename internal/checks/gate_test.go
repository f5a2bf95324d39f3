package checks

import (
	"errors"
	"net/url"
	"testing"
)

func TestCallbackURL(t *testing.T) {
	t.Parallel()
	base, _ := url.Parse("https://ghe.example/api/v3/")
	for callback, ok := range map[string]bool{
		"https://ghe.example/api/v3/repos/acme/api/actions/runs/42/deployment_protection_rule":         true,
		"https://evil.example/api/v3/repos/acme/api/actions/runs/42/deployment_protection_rule":        false,
		"http://ghe.example/api/v3/repos/acme/api/actions/runs/42/deployment_protection_rule":          false,
		"https://ghe.example/repos/acme/api/actions/runs/42/deployment_protection_rule":                false,
		"https://ghe.example/api/v3/repos/acme/api/actions/runs/42/pending_deployments":                false,
		"https://ghe.example/api/v3/repos/acme/../../admin/actions/runs/42/deployment_protection_rule": false,
		"https://ghe.example/api/v3/repos/acme/api/actions/runs/x/deployment_protection_rule":          false,
		"https://u:p@ghe.example/api/v3/repos/acme/api/actions/runs/42/deployment_protection_rule":     false,
		"https://ghe.example/api/v3/repos/acme/api/actions/runs/42/deployment_protection_rule?x=1":     false,
		"https://ghe.example:8443/api/v3/repos/acme/api/actions/runs/42/deployment_protection_rule":    false,
	} {
		_, err := callbackURL(base, callback)
		if ok != (err == nil) || !ok && !errors.Is(err, ErrForeignCallback) {
			t.Errorf("%s: %v, want ok=%v", callback, err, ok)
		}
	}
}
