package ghfacts

import (
	"regexp"
	"strings"

	"github.com/changegate/changegate/internal/change"
)

// coAuthorRE matches a Co-authored-by trailer line. Git only treats the
// last paragraph as trailers, but GitHub's squash merges put them in the
// middle of the body too; reading every line errs toward more authors,
// who are then excluded from reviewing, which is the safe side.
var coAuthorRE = regexp.MustCompile(`(?i)^[ \t]*co-authored-by[ \t]*:[ \t]*([^<\r\n]*?)[ \t]*<([^<>\r\n]+)>[ \t]*$`)

// CoAuthors returns the people that Co-authored-by trailers in a commit
// message name, in order, each once (by email, case-insensitively). The key
// is case-insensitive; a trailer without an <email> is ignored because it
// cannot be tied to an account.
func CoAuthors(message string) []change.Person {
	var out []change.Person
	seen := map[string]bool{}
	for line := range strings.Lines(message) {
		m := coAuthorRE.FindStringSubmatch(strings.TrimRight(line, "\r\n"))
		if m == nil {
			continue
		}
		email := strings.TrimSpace(m[2])
		if email == "" || seen[strings.ToLower(email)] {
			continue
		}
		seen[strings.ToLower(email)] = true
		out = append(out, change.Person{Name: strings.TrimSpace(m[1]), Email: email, Login: LoginFromEmail(email)})
	}
	return out
}

// noreplyRE matches GitHub's private commit emails: ID+login@ (accounts
// since 2017) and login@ (older ones). Bots' logins end in [bot].
var noreplyRE = regexp.MustCompile(`(?i)^(?:[0-9]+\+)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\[bot\])?)@users\.noreply\.github\.com$`)

// LoginFromEmail returns the GitHub login a noreply email belongs to, or ""
// for any other email.
func LoginFromEmail(email string) string {
	m := noreplyRE.FindStringSubmatch(strings.TrimSpace(email))
	if m == nil {
		return ""
	}
	return m[1]
}
