package ghfake

import (
	"slices"
	"strings"
	"time"
)

// Installation is an installation of the App on an account.
type Installation struct {
	ID                  int64  // assigned when zero
	Account             string // account login
	AccountID           int64  // assigned when zero
	AccountType         string // "Organization" (default) or "User"
	Suspended           bool
	RepositorySelection string            // "all" (default) or "selected"
	Permissions         map[string]string // default: what changegate asks for
}

// Repo is a repository an installation can see.
type Repo struct {
	ID            int64  // assigned when zero
	Owner         string // default: the installation's account
	Name          string
	Private       bool
	DefaultBranch string // default "main"
}

// FullName is "owner/name".
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

type installation struct {
	Installation
	createdAt time.Time
	repos     []Repo
}

func (in *installation) repo(owner, name string) *Repo {
	for i, r := range in.repos {
		if strings.EqualFold(r.Owner, owner) && strings.EqualFold(r.Name, name) {
			return &in.repos[i]
		}
	}
	return nil
}

// defaultPermissions are the permissions changegate's manifest requests.
func defaultPermissions() map[string]string {
	return map[string]string{
		"checks": "write", "contents": "read", "deployments": "write", "members": "read",
		"metadata": "read", "pull_requests": "read", "statuses": "read",
	}
}

func (s *Server) newID() int64 {
	s.nextID++
	return s.nextID
}

// AddInstallation adds or replaces an installation and returns it with
// defaults and IDs filled in.
func (s *Server) AddInstallation(in Installation) Installation {
	s.tb.Helper()
	if in.Account == "" {
		s.tb.Fatalf("ghfake: installation needs an account login")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.ID == 0 {
		in.ID = s.newID()
	}
	if in.AccountID == 0 {
		in.AccountID = s.newID()
	}
	if in.AccountType == "" {
		in.AccountType = "Organization"
	}
	if in.RepositorySelection == "" {
		in.RepositorySelection = "all"
	}
	if in.Permissions == nil {
		in.Permissions = defaultPermissions()
	}
	old := s.installations[in.ID]
	s.installations[in.ID] = &installation{Installation: in, createdAt: now}
	if old != nil {
		s.installations[in.ID].repos = old.repos
	}
	return in
}

// AddRepo gives an installation access to a repository and returns it with
// defaults and its ID filled in.
func (s *Server) AddRepo(installationID int64, r Repo) Repo {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.installations[installationID]
	if in == nil {
		s.tb.Fatalf("ghfake: AddRepo: no installation %d", installationID)
		return r
	}
	if r.Owner == "" {
		r.Owner = in.Account
	}
	if r.DefaultBranch == "" {
		r.DefaultBranch = "main"
	}
	if r.ID == 0 {
		r.ID = s.newID()
	}
	if old := in.repo(r.Owner, r.Name); old != nil {
		*old = r
	} else {
		in.repos = append(in.repos, r)
	}
	return r
}

// RemoveRepo takes a repository ("owner/name") away from an installation.
func (s *Server) RemoveRepo(installationID int64, fullName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installations[installationID]; in != nil {
		in.repos = slices.DeleteFunc(in.repos, func(r Repo) bool { return strings.EqualFold(r.FullName(), fullName) })
	}
}

// SuspendInstallation suspends an installation: it can no longer get
// tokens, and the tokens it has stop working.
func (s *Server) SuspendInstallation(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installations[id]; in != nil {
		in.Suspended = true
	}
}
