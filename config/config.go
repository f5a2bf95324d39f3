// Package config ships the server's default policy inside the binary, so
// that a fresh installation enforces something sensible with no file at all.
// The other files here are documentation for operators and editors.
package config

import _ "embed"

// DefaultPolicy is config/policy.default.yml: the baseline when the
// organisation has no changegate.yml in its .github repository.
//
//go:embed policy.default.yml
var DefaultPolicy []byte

// DefaultPolicyName names it in messages and in decisions.
const DefaultPolicyName = "server default (config/policy.default.yml)"
