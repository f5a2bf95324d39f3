package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/jira/jirafake"
)

// TestCrashLosesNoAcknowledgedDelivery builds the binary, sends it signed
// deliveries from many clients, kills it with SIGKILL while deliveries are
// arriving and jobs are in flight, restarts it, and checks that every
// acknowledged delivery was processed exactly once.
func TestCrashLosesNoAcknowledgedDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and crashes the binary; skipped in -short mode")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	dataDir := filepath.Join(dir, "data")
	secret := []byte("crash-test-secret")

	const total, killAfter, senders = 1500, 900, 16
	srv := startBinary(t, bin, dataDir, secret)
	var acked sync.Map // delivery id → true, only for 202s
	var nAcked atomic.Int64
	var next atomic.Int64
	killed := make(chan struct{})
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			// Senders failing from now on are expected to.
			close(killed)
			if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("kill: %v", err)
			}
		})
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				id := fmt.Sprintf("crash-%04d", i)
				status, err := sendWebhook(context.Background(), client, srv.base, secret,
					"installation_repositories", id, repoAddedBody(7, 100000+i, fmt.Sprintf("acme/r%04d", i)))
				if err != nil {
					select {
					case <-killed:
						return // the server is gone; this one was never acknowledged
					default:
						t.Errorf("send %s: %v", id, err)
						return
					}
				}
				if status == http.StatusAccepted {
					acked.Store(id, true)
					if nAcked.Add(1) == killAfter {
						kill()
					}
				}
			}
		})
	}
	wg.Wait()
	kill()
	srv.wait()

	// What the crash left behind, before recovery.
	db := openReadOnly(t, dataDir)
	var ackedIDs []string
	acked.Range(func(k, _ any) bool { ackedIDs = append(ackedIDs, k.(string)); return true })
	stored := queryInt(t, db, `SELECT COUNT(*) FROM deliveries`)
	doneAtKill := queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE processed = jobs`)
	undispatched := queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE dispatched = 0`)
	running := queryInt(t, db, `SELECT COUNT(*) FROM river_job WHERE state = 'running'`)
	t.Logf("at kill: %d acknowledged, %d stored, %d processed, %d not yet dispatched, %d jobs running",
		len(ackedIDs), stored, doneAtKill, undispatched, running)
	if doneAtKill >= len(ackedIDs) {
		t.Errorf("every delivery was processed before the kill; the test did not crash mid-flight (raise total)")
	}
	db.Close()

	srv = startBinary(t, bin, dataDir, secret)
	db = openReadOnly(t, dataDir)
	eventually(t, "recovery", 90*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE processed < jobs`) == 0
	})
	for _, id := range ackedIDs {
		var jobs, processed int
		if err := db.QueryRow(`SELECT jobs, processed FROM deliveries WHERE id = ?`, id).Scan(&jobs, &processed); err != nil {
			t.Errorf("acknowledged delivery %s lost: %v", id, err)
			continue
		}
		if jobs != 1 || processed != 1 {
			t.Errorf("delivery %s: %d jobs processed %d times, want exactly once", id, jobs, processed)
		}
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE processed > jobs`); n != 0 {
		t.Errorf("%d deliveries processed more than once", n)
	}
	repos := queryInt(t, db, `SELECT COUNT(*) FROM repositories WHERE installation_id = 7`)
	if repos < len(ackedIDs) {
		t.Errorf("repositories = %d, want at least the %d acknowledged", repos, len(ackedIDs))
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(); code != 0 {
		t.Errorf("exit after SIGTERM = %d; log:\n%s", code, srv.logs.String())
	}
	mustContain(t, srv.logs.String(), `"msg":"stopped cleanly"`)
}

type binServer struct {
	cmd  *exec.Cmd
	base string
	logs *logWatch
	done chan int
}

func startBinary(t *testing.T, bin, dataDir string, secret []byte, extraEnv ...string) *binServer {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"CHANGEGATE_DATA_DIR="+dataDir,
		"CHANGEGATE_LISTEN=127.0.0.1:0",
		"CHANGEGATE_WEBHOOK_SECRET="+string(secret),
		// The periodic completeness jobs would add records of their own.
		"CHANGEGATE_RECONCILE_INTERVAL=0",
		"CHANGEGATE_REDELIVERY_INTERVAL=0",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &binServer{cmd: cmd, logs: newLogWatch(), done: make(chan int, 1)}
	consumed := make(chan struct{})
	go func() { s.logs.consume(stderr); close(consumed) }()
	go func() {
		<-consumed
		err := cmd.Wait()
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		s.done <- code
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	s.base = s.logs.waitAddr(t)
	return s
}

func (s *binServer) wait() int {
	select {
	case code := <-s.done:
		return code
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		return <-s.done
	}
}

// fakesEnv is the environment that points a binary at the fakes: the
// App's key, written into dir, and the GitHub and Jira settings.
func fakesEnv(t *testing.T, dir string, gh *ghfake.Server, jf *jirafake.Server) []string {
	t.Helper()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"CHANGEGATE_GITHUB_APP_ID=" + itoa(gh.AppID()), "CHANGEGATE_GITHUB_PRIVATE_KEY_FILE=" + keyFile,
		"CHANGEGATE_GITHUB_API_URL=" + gh.URL(), "CHANGEGATE_JIRA_URL=" + jf.URL(), "CHANGEGATE_JIRA_USER=" + jf.User(),
		"CHANGEGATE_JIRA_TOKEN=" + jf.Token()}
}

func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "changegate")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}
