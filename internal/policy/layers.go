package policy

// Effective is a repository's effective policy, in the layers DESIGN.md
// gives: the organisation's file over the operator's floor, or over the
// built-in default when there is no floor; the repository's file over
// that. Each layer may only tighten the one below (Merge); the built-in
// default is a fallback, not a floor, for what only an organisation or
// repository knows. Nil layers are absent. defaults is the built-in
// default (AsFallback).
func Effective(defaults, floor, org, repo *Policy) (*Policy, error) {
	base := defaults
	if floor != nil {
		base = floor
	}
	if org != nil {
		merged, err := Merge(base, org)
		if err != nil {
			return nil, err
		}
		base = merged
	}
	if repo == nil {
		return base.clone(), nil
	}
	return Merge(base, repo)
}
