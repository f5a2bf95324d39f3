package policy

import (
	"regexp"
	"slices"
	"strings"

	"github.com/changegate/changegate/internal/change"
)

var jiraKey = regexp.MustCompile(`[A-Z][A-Z0-9_]+-[1-9][0-9]*`)

// lookAlikes are prefixes of identifiers shaped like Jira keys that are not
// tickets (CVE-2024-1234, SHA-256, UTF-8, ISO-8601, RFC-9110…). They are
// dropped only when the policy has no project allowlist; an allowlist is the
// real fix, and it wins (a project really named RFC can be listed).
// Single-letter prefixes never match: Jira keys have two or more.
var lookAlikes = []string{
	"AES", "CP", "CVE", "CWE", "ECMA", "ES", "HTTP", "IEC", "IEEE", "ISO", "MD",
	"PEP", "RFC", "RSA", "SHA", "SHA1", "SHA2", "SHA3", "TLS", "UCS", "UTF", "WIN",
}

// TicketKeys returns the Jira keys the pull request names in the policy's
// ticket sources, read in the order title, head branch, body, without
// repeats, in order of appearance. Keys outside ticket.projects are dropped;
// with no allowlist, known look-alikes are dropped instead.
func TicketKeys(p *Policy, pr change.PullRequest) []string {
	var out []string
	for _, k := range rawKeys(p, pr) {
		if allowedProject(p, project(k)) {
			out = append(out, k)
		}
	}
	return out
}

// rawKeys are the key-shaped words in the sources, before the project
// filter; Evaluate uses them to explain a key that was filtered out.
func rawKeys(p *Policy, pr change.PullRequest) []string {
	texts := map[string]string{SourceTitle: pr.Title, SourceBranch: pr.HeadRef, SourceBody: pr.Body}
	var out []string
	for _, src := range Sources {
		if !slices.Contains(p.Ticket.Sources, src) {
			continue
		}
		for _, k := range findKeys(texts[src]) {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// findKeys finds keys bounded by anything but an ASCII letter or digit.
// That is \b except that "_" also separates, so feature/PAY-123_fix names
// PAY-123.
func findKeys(s string) []string {
	var out []string
	for _, m := range jiraKey.FindAllStringIndex(s, -1) {
		if m[0] > 0 && isAlnum(s[m[0]-1]) || m[1] < len(s) && isAlnum(s[m[1]]) || m[1]-m[0] > change.MaxTicketKey {
			continue
		}
		out = append(out, s[m[0]:m[1]])
	}
	return out
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func project(key string) string {
	return key[:strings.LastIndexByte(key, '-')]
}

func allowedProject(p *Policy, proj string) bool {
	if len(p.Ticket.Projects) == 0 {
		return !slices.Contains(lookAlikes, proj)
	}
	return containsFold(p.Ticket.Projects, proj)
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}
