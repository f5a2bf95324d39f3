package policy

import (
	"errors"
	"path"
	"strings"
)

// Globs are path.Match patterns matched segment by segment on "/", plus
// "**" as a whole segment for zero or more segments: "docs/**" matches
// docs/a.md and docs/a/b.md, "release/*" matches release/1.2 but not
// release/1/2. The same syntax serves files, branches, environments and
// check names, so users learn one rule.

// validGlob says what is wrong with a pattern, if anything.
func validGlob(pattern string) error {
	if pattern == "" {
		return errors.New("empty pattern")
	}
	for _, seg := range strings.Split(pattern, "/") {
		if seg == "**" {
			continue
		}
		if strings.Contains(seg, "**") {
			return errors.New(`"**" must be a whole path segment, as in docs/**`)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return errors.New("bad pattern syntax (see Go's path.Match)")
		}
	}
	return nil
}

// matchGlob reports whether name matches pattern. Invalid patterns match
// nothing; Parse rejects them before they get here.
func matchGlob(pattern, name string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			// Collapse runs of ** and try every split point; patterns are
			// short, so the search stays small.
			for len(pat) > 0 && pat[0] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 0 {
				return true
			}
			for i := range len(name) + 1 {
				if matchSegments(pat, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		ok, err := path.Match(pat[0], name[0])
		if err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// matchAny reports whether name matches one of the patterns.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if matchGlob(p, name) {
			return true
		}
	}
	return false
}

// matchAnyFold is matchAny for names GitHub compares case-insensitively
// (environments).
func matchAnyFold(patterns []string, name string) bool {
	for _, p := range patterns {
		if matchGlob(strings.ToLower(p), strings.ToLower(name)) {
			return true
		}
	}
	return false
}
