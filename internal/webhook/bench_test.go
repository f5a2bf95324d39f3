package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/tidwall/gjson"

	"github.com/changegate/changegate/internal/config"
	"github.com/changegate/changegate/internal/inventory"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/queue"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/testenv"
	"github.com/changegate/changegate/internal/webhook"
)

// BenchmarkIntake compares the real intake (signature, translation, durable
// group-committed enqueue on SQLite with synchronous=FULL, workers running)
// with a bare echo handler that only reads the same body, in the same run,
// over loopback HTTP. Report: ns/op, acks/s and p99. Two bodies: a small
// installation_repositories one, and GitHub's 28 KB pull_request
// synchronize example (from ../shared/testdata), whose evaluation jobs a
// no-op worker takes.
//
//	go test ./internal/webhook -run '^$' -bench Intake -benchtime 20000x
func BenchmarkIntake(b *testing.B) {
	b.Run("install", func(b *testing.B) { benchIntake(b, "installation_repositories", []byte(installBody)) })
	b.Run("pr28k", func(b *testing.B) {
		dir := testenv.RequireSharedTestdata(b)
		body, err := os.ReadFile(filepath.Join(dir, "webhooks", "examples", "pull_request", "synchronize.payload.json"))
		if err != nil {
			b.Fatal(err)
		}
		benchIntake(b, "pull_request", body)
	})
}

func benchIntake(b *testing.B, event string, body []byte) {
	b.Run("bare", func(b *testing.B) {
		e := echo.New()
		e.POST("/webhooks/github", func(c echo.Context) error {
			if _, err := io.Copy(io.Discard, c.Request().Body); err != nil {
				return err
			}
			return c.NoContent(http.StatusAccepted)
		})
		srv := httptest.NewServer(e)
		defer srv.Close()
		runIntake(b, srv.URL+"/webhooks/github", event, body)
	})
	b.Run("verified", func(b *testing.B) {
		// The least any intake that refuses a bad signature or a body that
		// is not JSON must do: read, HMAC, validate; nothing stored.
		e := echo.New()
		e.POST("/webhooks/github", func(c echo.Context) error {
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return err
			}
			mac := hmac.New(sha256.New, secret)
			mac.Write(body)
			want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
			if !hmac.Equal([]byte(want), []byte(c.Request().Header.Get("X-Hub-Signature-256"))) || !gjson.ValidBytes(body) {
				return c.NoContent(http.StatusBadRequest)
			}
			return c.NoContent(http.StatusAccepted)
		})
		srv := httptest.NewServer(e)
		defer srv.Close()
		runIntake(b, srv.URL+"/webhooks/github", event, body)
	})
	noop := func(w *queue.Workers) {
		queue.Add(w, jobs.Handler[jobs.EvaluatePR](func(context.Context, *slog.Logger, jobs.EvaluatePR) (jobs.Apply, error) { return nil, nil }))
	}
	b.Run("durable", func(b *testing.B) {
		s := newStackWith(b, "FULL", noop)
		runIntake(b, s.url, event, body)
	})
	// The same on PostgreSQL (CHANGEGATE_TEST_DATABASE_URL), with one
	// replica and with three sharing the database, the clients spread
	// over them as a load balancer would.
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("postgres-%d", replicas), func(b *testing.B) {
			runIntake(b, strings.Join(pgStacks(b, replicas, noop), " "), event, body)
		})
	}
}

// pgStacks starts n intakes with their queues on one fresh PostgreSQL
// database and returns their URLs.
func pgStacks(b *testing.B, n int, more func(*queue.Workers)) []string {
	url := testenv.PostgresDatabase(b)
	var urls []string
	for range n {
		s, err := postgres.Open(b.Context(), url, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		w := queue.NewWorkers()
		queue.Add(w, inventory.EventHandler(s, time.Now, nil))
		more(w)
		q, err := queue.New(queue.NewBackend(riverpgxv5.New(s.Pool()), s), w,
			queue.Config{Workers: 8, Logger: slog.New(slog.DiscardHandler), ClientID: fmt.Sprintf("bench-%d", len(urls))})
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		h, err := webhook.NewGitHub(webhook.Options{Secret: secret, MaxBody: config.MaxWebhookBody, Enqueuer: q,
			Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		e := echo.New()
		e.POST("/webhooks/github", h.Handle)
		srv := httptest.NewServer(e)
		b.Cleanup(func() {
			srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			q.Stop(ctx)
			s.Close()
		})
		urls = append(urls, srv.URL+"/webhooks/github")
	}
	return urls
}

// runIntake posts body to url (several, space-separated: round robin)
// from 32 clients and reports acks/s and p99.
func runIntake(b *testing.B, url, event string, body []byte) {
	urls := strings.Fields(url)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	sig := webhook.Sign(secret, body)
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(16)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			n := seq.Add(1)
			req, _ := http.NewRequest(http.MethodPost, urls[int(n)%len(urls)], bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", event)
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", n))
			req.Header.Set("X-Hub-Signature-256", sig)
			t := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			local = append(local, time.Since(t))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "acks/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
