package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/testenv"
)

// TestPostgresLifecycle runs the server on PostgreSQL with its evidence in
// S3, as the scale-out configuration does: a compliant pull request gets
// its check, its merge is archived once (the merge delivered twice), and
// the ledger, read from S3 and the PostgreSQL index, verifies.
func TestPostgresLifecycle(t *testing.T) {
	t.Parallel()
	dbURL, evidenceURL := testenv.PostgresDatabase(t), testenv.S3Evidence(t)
	keyFile := filepath.Join(t.TempDir(), "signing-key.pem")
	a := startAppWith(t, map[string]string{"CHANGEGATE_DATABASE_URL": dbURL, "CHANGEGATE_EVIDENCE_URL": evidenceURL, "CHANGEGATE_SIGNING_KEY_FILE": keyFile})
	a.jf.SetStatus("PAY-123", "Approved")
	// /readyz reports the database and the evidence bucket.
	resp, err := a.client.Get(a.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || ready.Checks["store"] != "ok" || ready.Checks["evidence"] != "ok" || ready.Checks["queue"] != "ok" {
		t.Errorf("readyz: %d %v, want 200 with store, queue and evidence ok", resp.StatusCode, ready.Checks)
	}
	head, merge := strings.Repeat("e", 40), fmt.Sprintf("%040d", 61)
	a.compliantPR(61, head)
	a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, head), `"number":51`, `"number":61`))
	eventually(t, "the check passes", 30*time.Second, func() bool {
		c, _ := a.gh.LatestCheckRun("acme", "api", head, "changegate")
		return c.Conclusion == "success"
	})
	a.gh.MergePullRequest("acme", "api", 61, merge, "alice")
	closed := strings.ReplaceAll(strings.ReplaceAll(prEvent("closed", 51), sha1, merge), `"number":51`, `"number":61`)
	a.github(t, "pull_request", closed)
	a.github(t, "pull_request", closed)

	pg := openPG(t, dbURL)
	eventually(t, "the merge archived", 30*time.Second, func() bool {
		n, err := pg.LedgerReader().Size(t.Context())
		return err == nil && n == 1
	})
	waitIdlePG(t, pg, time.Minute)
	if rep := verifyScaledOut(t, pg, evidenceURL, keyFile); rep.Records != 1 {
		t.Errorf("the ledger holds %d records, want 1", rep.Records)
	}

	// An auditor verifies it with the CLI, from the database and the
	// bucket, trusting only the public key.
	audit := func(args ...string) (int, string) {
		var out, errOut strings.Builder
		code := run(t.Context(), append([]string{"audit"}, args...), envMap(nil), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	_, pem := audit("pubkey", "--key", keyFile)
	pubFile, cp := filepath.Join(t.TempDir(), "changegate.pub"), filepath.Join(t.TempDir(), "cp.note")
	if err := os.WriteFile(pubFile, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := audit("verify", "--database-url", dbURL, "--evidence-url", evidenceURL, "--pubkey", pubFile, "--save-checkpoint", cp); code != 0 || !strings.HasPrefix(out, "ok: 1 records") {
		t.Errorf("audit verify from PostgreSQL and S3: exit %d, %s", code, out)
	}
	if code, out := audit("verify", "--database-url", dbURL, "--evidence-url", evidenceURL, "--pubkey", pubFile, "--since", cp); code != 0 || !strings.HasPrefix(out, "ok: 0 records after trusted checkpoint 1") {
		t.Errorf("audit verify --since from PostgreSQL and S3: exit %d, %s", code, out)
	}
	if code, out := audit("verify", "--database-url", dbURL, "--pubkey", pubFile); code != 2 || !strings.Contains(out, "--evidence-url") {
		t.Errorf("--database-url without --evidence-url: exit %d, %s", code, out)
	}
	scaledOutCommands(t, a, scaledOut{db: dbURL, evidence: evidenceURL, key: keyFile, pub: pubFile})
}

// scaledOut is where a scaled-out deployment keeps its ledger, and its
// keys.
type scaledOut struct{ db, evidence, key, pub string }

// scaledOutCommands runs the auditor's and the admin's commands on a
// PostgreSQL database and S3 bucket holding one archived merge, beside
// the running server a, then without it: population, sample, exceptions
// and coverage read it; reconcile walks beside the replicas; reindex is
// refused while a replica runs, and rebuilds the index once none does.
func scaledOutCommands(t *testing.T, a *app, so scaledOut) {
	dir := t.TempDir()
	cli := func(args ...string) (int, string) {
		var out, errOut strings.Builder
		code := run(t.Context(), args, envMap(a.env), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	from, to := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly), time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
	ledger := []string{"--database-url", so.db, "--evidence-url", so.evidence, "--key", so.key}
	pop := filepath.Join(dir, "population.csv")
	if code, out := cli(append([]string{"audit", "population", "--from", from, "--to", to, "--out", pop}, ledger...)...); code != 0 {
		t.Fatalf("audit population from PostgreSQL: exit %d: %s", code, out)
	}
	if b, _ := os.ReadFile(pop); strings.Count(strings.TrimSpace(string(b)), "\n") != 1 {
		t.Errorf("the population holds %d rows, want 1:\n%s", strings.Count(strings.TrimSpace(string(b)), "\n"), b)
	}
	if code, out := cli("audit", "verify", pop, "--pubkey", so.pub); code != 0 {
		t.Errorf("verify the population's manifest: exit %d: %s", code, out)
	}
	sample := filepath.Join(dir, "sample.zip")
	if code, out := cli(append([]string{"audit", "sample", "--from", from, "--to", to, "--size", "1", "--seed", "s", "--out", sample}, ledger...)...); code != 0 {
		t.Fatalf("audit sample from PostgreSQL: exit %d: %s", code, out)
	}
	if code, out := cli("audit", "verify", sample, "--pubkey", so.pub); code != 0 || !strings.HasPrefix(out, "ok") {
		t.Errorf("verify the sample: exit %d: %s", code, out)
	}
	if code, out := cli(append([]string{"audit", "exceptions", "--from", from, "--to", to}, ledger...)...); code != 0 {
		t.Errorf("audit exceptions from PostgreSQL: exit %d: %s", code, out)
	}
	badURL := filepath.Join(dir, "badurl.csv")
	if code, out := cli("audit", "population", "--from", from, "--to", to, "--out", badURL, "--database-url", "postgres://cg:pw@127.0.0.1:notaport/x", "--evidence-url", so.evidence, "--key", so.key); code != 2 || !strings.Contains(out, "--database-url") || strings.Contains(out, ":pw@") {
		t.Errorf("--database-url that does not parse: exit %d: %s", code, out)
	}
	if _, err := os.Stat(badURL); !os.IsNotExist(err) {
		t.Errorf("a refused population wrote %s", badURL)
	}
	noKey := filepath.Join(dir, "nokey.csv")
	if code, out := cli("audit", "population", "--from", from, "--to", to, "--out", noKey, "--database-url", so.db, "--evidence-url", so.evidence); code != 2 || !strings.Contains(out, "--key") {
		t.Errorf("--database-url without --key: exit %d: %s", code, out)
	}
	if _, err := os.Stat(noKey); !os.IsNotExist(err) {
		t.Errorf("a refused population wrote %s", noKey)
	}
	scaledOutAdmin(t, a, so, cli)
}

// scaledOutAdmin is the admin's half of scaledOutCommands.
func scaledOutAdmin(t *testing.T, a *app, so scaledOut, cli func(args ...string) (int, string)) {
	a.gh.Push("acme", "api", "main", "", ghfake.GitCommit{SHA: strings.Repeat("4", 40), Author: ghfake.Person{Name: "Mallory", Email: "m@example.com", Login: "mallory"},
		Files: map[string][]byte{"src/x": []byte("x")}})
	if code, out := cli("reconcile", "--repo", "acme/api"); code != 0 || !strings.Contains(out, "1 archived (4444444)") {
		t.Errorf("reconcile beside the replicas: exit %d:\n%s", code, out)
	}
	if code, out := cli("audit", "coverage", "--database-url", so.db); code != 0 || (!strings.Contains(out, "acme/api") && !strings.Contains(out, "no coverage yet")) {
		t.Errorf("coverage from PostgreSQL: exit %d:\n%s", code, out)
	}
	reindex := []string{"audit", "reindex", "--database-url", so.db, "--evidence-url", so.evidence, "--pubkey", so.pub}
	if code, out := cli(reindex...); code == 0 || !strings.Contains(out, "replicas are running") {
		t.Errorf("reindex beside a running replica: exit %d: %s", code, out)
	}
	a.stop()
	if code, out := cli(reindex...); code != 0 || !strings.Contains(out, "reindexed 2 records") {
		t.Errorf("reindex once the replicas stopped: exit %d: %s", code, out)
	}
	if code, out := cli("audit", "verify", "--database-url", so.db, "--evidence-url", so.evidence, "--pubkey", so.pub); code != 0 || !strings.HasPrefix(out, "ok: 2 records") {
		t.Errorf("verify after the reindex: exit %d: %s", code, out)
	}
}

// openPG opens the PostgreSQL store at url, as a replica does, closed
// with the test.
func openPG(t *testing.T, url string) *postgres.DB {
	t.Helper()
	pg, err := postgres.Open(t.Context(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return pg
}

// waitIdlePG waits until every delivery the PostgreSQL store holds is
// processed; on a timeout it says what is left, and where.
func waitIdlePG(t *testing.T, pg *postgres.DB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ds, err := pg.Deliveries(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, d := range ds {
			if d.Processed < d.Jobs {
				left = append(left, d.ID)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d deliveries not processed (first %v); %s", within, len(left), left[:min(len(left), 5)], queueState(t, pg))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueState describes the queue's unfinished jobs, for a test that timed
// out waiting for them.
func queueState(t *testing.T, pg *postgres.DB) string {
	states, _ := pg.JobStates(t.Context())
	var undispatched int
	pg.Pool().QueryRow(t.Context(), `SELECT COUNT(*) FROM deliveries WHERE NOT dispatched`).Scan(&undispatched)
	out := fmt.Sprintf("%d not dispatched; jobs by state %v; unfinished jobs:", undispatched, states)
	rows, err := pg.Pool().Query(t.Context(), `SELECT id::text || ' ' || kind || ' ' || state::text || ' attempt ' || attempt::text ||
		' by ' || COALESCE(array_to_string(attempted_by, ','), '') || ' at ' || COALESCE(attempted_at::text, '') || ' scheduled ' || scheduled_at::text
		FROM river_job WHERE state <> 'completed' ORDER BY id LIMIT 20`)
	if err != nil {
		return out + " " + err.Error()
	}
	defer rows.Close()
	for rows.Next() {
		var j string
		rows.Scan(&j)
		out += "\n  " + j
	}
	return out
}

// TestPostgresOutage stops PostgreSQL under load and starts it again.
// While it is down intake answers 503 (GitHub does not retry those; the
// sender here resends, as the redelivery sweep would), /readyz says the
// store is down, and nothing is acknowledged that is then lost: after the
// restart every acknowledged delivery is stored once and processed once.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	evidenceURL := testenv.S3Evidence(t) // first: it skips at once without S3
	pgsrv := testenv.StartPostgres(t)
	a := startAppWith(t, map[string]string{"CHANGEGATE_DATABASE_URL": pgsrv.URL, "CHANGEGATE_EVIDENCE_URL": evidenceURL,
		"CHANGEGATE_SIGNING_KEY_FILE": filepath.Join(t.TempDir(), "signing-key.pem")})
	const total = 300
	for i := range total {
		// GitHub lists them too: the installation sync, which may run
		// after the webhooks, keeps them.
		a.gh.AddRepo(42, ghfake.Repo{ID: int64(300000 + i), Owner: "acme", Name: fmt.Sprintf("o%04d", i)})
	}
	var acked, unavailable, other atomic.Int64
	next := atomic.Int64{}
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				id, body := fmt.Sprintf("outage-%04d", i), repoAddedBody(42, int64(300000+i), fmt.Sprintf("acme/o%04d", i))
				for time.Since(time.Now()) < time.Minute {
					status, err := sendWebhook(context.Background(), client, a.base, []byte(ghSecret), "installation_repositories", id, body)
					switch {
					case err == nil && status == http.StatusAccepted:
						acked.Add(1)
					case err == nil && status == http.StatusServiceUnavailable:
						unavailable.Add(1)
						time.Sleep(20 * time.Millisecond)
						continue
					default:
						other.Add(1)
						t.Errorf("delivery %s: %d %v", id, status, err)
					}
					break
				}
			}
		})
	}
	for acked.Load() < total/3 {
		time.Sleep(5 * time.Millisecond)
	}
	pgsrv.Stop(t)
	t.Logf("PostgreSQL stopped after %d acknowledged deliveries", acked.Load())
	eventually(t, "intake refusing with 503", 20*time.Second, func() bool { return unavailable.Load() > 0 })
	resp, err := a.client.Get(a.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with the database down: %d, want 503", resp.StatusCode)
	}
	time.Sleep(time.Second)
	pgsrv.Start(t)
	wg.Wait()
	t.Logf("%d acknowledged, %d answered 503 while PostgreSQL was down", acked.Load(), unavailable.Load())

	pg := openPG(t, pgsrv.URL)
	// Jobs whose commit met the outage retry with backoff.
	waitIdlePG(t, pg, 3*time.Minute)
	ds, err := pg.Deliveries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != total || acked.Load() != total {
		t.Errorf("%d deliveries stored and %d acknowledged, want %d", len(ds), acked.Load(), total)
	}
	for _, d := range ds {
		if d.Processed != d.Jobs {
			t.Errorf("delivery %s: %d of %d jobs processed", d.ID, d.Processed, d.Jobs)
		}
	}
	repos, err := pg.Repositories(t.Context())
	if err != nil || len(repos) < total {
		t.Errorf("%d repositories recorded (%v), want at least %d", len(repos), err, total)
	}
}
