package main

import (
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/testenv"
)

// BenchmarkWebhookToCheck measures, through the real server against the
// in-process fakes, the time from a pull_request delivery's send to the
// changegate check written on its head: intake, the queue, the facts (PR,
// policy, commits, reviews, deployments, team members, Jira) and the
// check. The baseline, in the same run, is one GET to the fake GitHub.
// Report: p50 and p99 in ms, and p50 over the baseline.
//
//	go test ./cmd/changegate -run '^$' -bench WebhookToCheck -benchtime 200x
//
// It runs on the embedded store, and on PostgreSQL with the evidence in S3
// when CHANGEGATE_TEST_DATABASE_URL and CHANGEGATE_TEST_S3_URL are set.
func BenchmarkWebhookToCheck(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchWebhookToCheck(b, nil) })
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("postgres-%d", replicas), func(b *testing.B) {
			benchWebhookToCheck(b, map[string]string{"CHANGEGATE_DATABASE_URL": testenv.PostgresDatabase(b), "CHANGEGATE_EVIDENCE_URL": testenv.S3Evidence(b),
				"CHANGEGATE_SIGNING_KEY_FILE": filepath.Join(b.TempDir(), "signing-key.pem")}, replicas)
		})
	}
}

// benchWebhookToCheck runs the benchmark on one server, or on several
// replicas sharing the database, the fakes and the key, each delivery
// sent to the next replica.
func benchWebhookToCheck(b *testing.B, env map[string]string, replicas ...int) {
	a := startAppWith(b, env)
	bases := []string{a.base}
	for r := 1; len(replicas) > 0 && r < replicas[0]; r++ {
		more := maps.Clone(a.env)
		more["CHANGEGATE_DATA_DIR"] = filepath.Join(b.TempDir(), "data")
		bases = append(bases, serveInProcess(b, more).base)
	}
	a.jf.SetStatus("PAY-123", "Approved")
	get := func() time.Duration {
		start := time.Now()
		resp, err := http.Get(strings.TrimSuffix(a.gh.URL(), "/") + "/repos/acme/api")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		return time.Since(start)
	}
	var base []time.Duration
	for range 200 {
		base = append(base, get())
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		n := 1000 + i
		sha := fmt.Sprintf("%040x", 0xb000+i)
		a.compliantPR(n, sha)
		body := strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, sha), `"number":51`, fmt.Sprintf(`"number":%d`, n))
		start := time.Now()
		a.base = bases[i%len(bases)]
		a.github(b, "pull_request", body)
		for len(a.conclusionsOn(sha)) == 0 {
			if time.Since(start) > 30*time.Second {
				b.Fatalf("no check on %s after 30s", sha)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(base)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(base[len(base)/2].Microseconds())/1000, "fake-get-p50-ms")
	b.ReportMetric(float64(p50)/float64(base[len(base)/2]), "p50/fake-get")
}
