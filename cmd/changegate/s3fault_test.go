package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/blob/s3"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/testenv"
)

// s3Fault is what the proxy in front of versitygw does to writes.
type s3Fault int32

const (
	s3Healthy    s3Fault = iota
	s3Refuse             // a write is answered 503 and not stored
	s3LoseAnswer         // a write is stored, then answered 503
)

// faultyS3 is a reverse proxy to the S3 server that injects fault into
// writes (PUT, POST, DELETE) and passes reads.
type faultyS3 struct {
	fault            atomic.Int32
	refused, stored  atomic.Int64
	*httptest.Server // the endpoint the replicas use
}

func newFaultyS3(t *testing.T, endpoint string) *faultyS3 {
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyS3{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fault := s3Fault(f.fault.Load())
		if r.Method == http.MethodGet || r.Method == http.MethodHead || fault == s3Healthy {
			proxy.ServeHTTP(w, r)
			return
		}
		if fault == s3LoseAnswer {
			proxy.ServeHTTP(httptest.NewRecorder(), r)
			f.stored.Add(1)
		} else {
			io.Copy(io.Discard, r.Body)
		}
		f.refused.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>refused by the test</Message></Error>`)
	}))
	t.Cleanup(f.Close)
	return f
}

// TestS3RefusesWrites: two replicas on PostgreSQL archive direct pushes
// into S3 through a proxy that first refuses every write, then stores
// writes and loses their answers, then recovers. Every delivery is
// acknowledged throughout; once S3 takes writes again every push is one
// record, the log has no gap and no unsigned record, and it verifies.
func TestS3RefusesWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for retries; skipped in -short mode")
	}
	t.Parallel()
	dbURL, evidenceURL := testenv.PostgresDatabase(t), testenv.S3Evidence(t)
	u, err := url.Parse(evidenceURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newFaultyS3(t, u.Query().Get("endpoint"))
	q := u.Query()
	q.Set("endpoint", proxy.URL)
	viaProxy := "s3://" + u.Host + u.Path + "?" + q.Encode()

	keyFile := filepath.Join(t.TempDir(), "signing-key.pem")
	a := startAppWith(t, map[string]string{"CHANGEGATE_DATABASE_URL": dbURL, "CHANGEGATE_EVIDENCE_URL": viaProxy, "CHANGEGATE_SIGNING_KEY_FILE": keyFile})
	env := map[string]string{"CHANGEGATE_DATA_DIR": filepath.Join(t.TempDir(), "data")}
	for k, v := range a.env {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	bases := []string{a.base, serveInProcess(t, env).base}
	var shas []string
	push := func(n int) {
		for range n {
			i := len(shas)
			sha := fmt.Sprintf("%040x", 0xf00000+i)
			shas = append(shas, sha)
			a.base = bases[i%len(bases)]
			a.github(t, "push", fmt.Sprintf(`{"ref":"refs/heads/main","before":"%040d","after":%q,"commits":[{"id":%q}],`+
				`"pusher":{"name":"mallory"},"repository":{"full_name":"acme/api","default_branch":"main"},"installation":{"id":42}}`, i, sha, sha))
		}
	}
	pg := openPG(t, dbURL)
	size := func() uint64 { n, _ := pg.LedgerReader().Size(t.Context()); return n }

	push(4)
	eventually(t, "the first pushes archived", 30*time.Second, func() bool { return size() == 4 })
	proxy.fault.Store(int32(s3Refuse))
	push(4)
	eventually(t, "writes refused", 30*time.Second, func() bool { return proxy.refused.Load() >= 4 })
	if n := size(); n != 4 {
		t.Errorf("%d records indexed while S3 refused every write, want the 4 from before", n)
	}
	proxy.fault.Store(int32(s3LoseAnswer))
	push(4)
	eventually(t, "writes stored with their answers lost", 60*time.Second, func() bool { return proxy.stored.Load() >= 2 })
	proxy.fault.Store(int32(s3Healthy))
	t.Logf("S3 refused %d writes, %d of them stored", proxy.refused.Load(), proxy.stored.Load())

	waitIdlePG(t, pg, 2*time.Minute)
	checkOneRecordPerPush(t, pg, evidenceURL, keyFile, shas)
}

// checkOneRecordPerPush verifies the ledger, read straight from S3, and
// checks that each push is exactly one record.
func checkOneRecordPerPush(t *testing.T, pg *postgres.DB, evidenceURL, keyFile string, shas []string) {
	t.Helper()
	rep := verifyScaledOut(t, pg, evidenceURL, keyFile)
	if rep.Records != int64(len(shas)) {
		t.Errorf("the ledger holds %d records, want one per push: %d", rep.Records, len(shas))
	}
	for _, sha := range shas {
		if ids, err := pg.Ledger().IDsFor(t.Context(), "acme/api", sha); err != nil || len(ids) != 1 {
			t.Errorf("push %s: records %v, %v; want one", sha[:8], ids, err)
		}
	}
	t.Logf("ledger: %d records in %d checkpoints, verified", rep.Records, rep.Checkpoints)
}

// verifyScaledOut verifies the ledger in S3 and PostgreSQL against the
// signing key in keyFile.
func verifyScaledOut(t *testing.T, pg *postgres.DB, evidenceURL, keyFile string) *evidence.Report {
	t.Helper()
	blobs, err := s3.Open(t.Context(), evidenceURL, s3.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := readPublicKey(keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evidence.Verify(ledger.Source(t.Context(), blobs, pg.Ledger().Rows), pub, LedgerOrigin(pub))
	if err != nil {
		t.Fatalf("the ledger does not verify: %v", err)
	}
	return rep
}
