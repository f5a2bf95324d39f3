package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// PGServer is a PostgreSQL server of a test's own, which it may stop and
// start: for faults the shared server (DatabaseEnv) must not suffer.
type PGServer struct {
	URL  string
	bin  string
	dir  string
	port int
}

// StartPostgres initialises and starts a throwaway PostgreSQL cluster on
// 127.0.0.1, stopped when the test ends. It needs PostgreSQL's server
// binaries (/usr/lib/postgresql/*/bin, as Debian installs them) and skips
// without them; as root it runs them as the postgres user, since initdb
// refuses root.
func StartPostgres(t testing.TB) *PGServer {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Skip("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin): cannot start a server of the test's own")
	}
	sort.Strings(bins)
	// Not t.TempDir(): its parents are root's alone, and the server runs
	// as the postgres user.
	dir, err := os.MkdirTemp("", "changegate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	s := &PGServer{bin: filepath.Dir(bins[len(bins)-1]), dir: dir}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.run(t, "initdb", "-D", filepath.Join(s.dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync")
	s.Start(t)
	t.Cleanup(func() { s.ctl("-m", "immediate", "stop") })
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	return s
}

// Start starts the server (again), waiting until it takes connections.
func (s *PGServer) Start(t testing.TB) {
	t.Helper()
	if out, err := s.ctl("-l", filepath.Join(s.dir, "log"), "-w", "-t", "30",
		"-o", "-c listen_addresses=127.0.0.1 -p "+strconv.Itoa(s.port)+" -k "+s.dir, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the server at once, as a crash or an outage would.
func (s *PGServer) Stop(t testing.TB) {
	t.Helper()
	if out, err := s.ctl("-m", "immediate", "-w", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (s *PGServer) ctl(args ...string) ([]byte, error) {
	return s.command("pg_ctl", append([]string{"-D", filepath.Join(s.dir, "data")}, args...)...).CombinedOutput()
}

func (s *PGServer) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := s.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func (s *PGServer) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if os.Getuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}
