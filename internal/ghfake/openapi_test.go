package ghfake

import "testing"

func TestSpecRoute(t *testing.T) {
	t.Parallel()
	sp := &spec{}
	for _, p := range []string{
		"/repos/{owner}/{repo}",
		"/repos/{owner}/{repo}/commits/{ref}",
		"/repos/{owner}/{repo}/commits/{ref}/check-runs",
		"/repos/{owner}/{repo}/compare/{basehead}",
		"/repos/{owner}/{repo}/contents/{path}",
		"/repos/{owner}/{repo}/pulls/{pull_number}",
	} {
		sp.add("GET", p)
	}
	sp.add("POST", "/repos/{owner}/{repo}/check-runs")

	tests := []struct {
		name, method, path, want string
		known                    bool
	}{
		{"repo", "GET", "/repos/o/r", "/repos/{owner}/{repo}", true},
		{"HEAD as GET", "HEAD", "/repos/o/r", "/repos/{owner}/{repo}", true},
		{"wrong method", "DELETE", "/repos/o/r", "", false},
		{"empty segment", "GET", "/repos/o//pulls/1", "", false},
		{"extra segment", "GET", "/repos/o/r/pulls/1/x", "", false},
		{"most specific wins", "GET", "/repos/o/r/commits/abc/check-runs", "/repos/{owner}/{repo}/commits/{ref}/check-runs", true},
		{"ref with slash", "GET", "/repos/o/r/commits/heads/main", "/repos/{owner}/{repo}/commits/{ref}", true},
		{"nested content path", "GET", "/repos/o/r/contents/a/b/c.yaml", "/repos/{owner}/{repo}/contents/{path}", true},
		{"compare", "GET", "/repos/o/r/compare/main...f%2Fx", "/repos/{owner}/{repo}/compare/{basehead}", true},
		{"compare across segments", "GET", "/repos/o/r/compare/u:main...u:feature/x", "/repos/{owner}/{repo}/compare/{basehead}", true},
		{"compare needs dots", "GET", "/repos/o/r/compare/main..f", "", false},
		{"compare needs a base", "GET", "/repos/o/r/compare/...f", "", false},
		{"escaped slash stays in segment", "GET", "/repos/o/r%2Fx", "/repos/{owner}/{repo}", true},
		{"post", "POST", "/repos/o/r/check-runs", "/repos/{owner}/{repo}/check-runs", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, known := sp.route(tt.method, tt.path)
			if got != tt.want || known != tt.known {
				t.Errorf("route(%s %s) = %q, %v; want %q, %v", tt.method, tt.path, got, known, tt.want, tt.known)
			}
		})
	}

	if route, known := (*spec)(nil).route("GET", "/anything"); route != "" || !known {
		t.Errorf("nil spec: %q, %v; want every call known", route, known)
	}
}
