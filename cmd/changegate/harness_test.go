package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/changegate/changegate/internal/store/sqlite"
	"github.com/changegate/changegate/internal/webhook"
)

// logWatch collects a server's JSON log lines and finds its address.
type logWatch struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	addr  chan string
	once  sync.Once
	lines []map[string]any
}

func newLogWatch() *logWatch { return &logWatch{addr: make(chan string, 1)} }

// consume reads r line by line until it ends.
func (l *logWatch) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		l.mu.Lock()
		l.buf.Write(line)
		l.buf.WriteByte('\n')
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			l.lines = append(l.lines, m)
			if m["msg"] == "changegate listening" {
				if a, ok := m["addr"].(string); ok {
					l.once.Do(func() { l.addr <- a })
				}
			}
		}
		l.mu.Unlock()
	}
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logWatch) waitAddr(t testing.TB) string {
	t.Helper()
	select {
	case a := <-l.addr:
		return "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start; log:\n%s", l.String())
		return ""
	}
}

// sendWebhook posts a signed delivery and returns the status.
func sendWebhook(ctx context.Context, client *http.Client, base string, secret []byte, event, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign(secret, body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func repoAddedBody(installation int64, repoID int64, name string) []byte {
	return fmt.Appendf(nil, `{"action":"added","installation":{"id":%d,"account":{"login":"acme","type":"Organization"}},`+
		`"repository_selection":"selected","repositories_added":[{"id":%d,"full_name":%q,"private":false}],"repositories_removed":[]}`,
		installation, repoID, name)
}

// openReadOnly opens a data dir's database beside a running server.
func openReadOnly(t *testing.T, dataDir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqlite.FileName)+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryInt(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("missing %q", sub)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func io_Pipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }

// served is a server started in-process with run.
type served struct {
	base string
	logs *logWatch
	stop func() int // stops the server and returns its exit code; idempotent
}

// serveInProcess runs `changegate serve` with env until stop is called or
// the test ends; at the end, a non-zero exit code fails the test.
func serveInProcess(t testing.TB, env map[string]string) *served {
	t.Helper()
	// The periodic completeness jobs run where a test asks for them: they
	// would add records and calls of their own.
	env = maps.Clone(env)
	for _, k := range []string{"CHANGEGATE_RECONCILE_INTERVAL", "CHANGEGATE_REDELIVERY_INTERVAL"} {
		if _, set := env[k]; !set {
			env[k] = "0"
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io_Pipe()
	logs := newLogWatch()
	go logs.consume(pr)
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve"}, envMap(env), &bytes.Buffer{}, pw)
		pw.Close()
	}()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-exit:
			case <-time.After(40 * time.Second):
				t.Error("server did not stop")
			}
		})
		return code
	}
	t.Cleanup(func() {
		if c := stop(); c != 0 {
			t.Errorf("exit code %d; log:\n%s", c, logs.String())
		}
	})
	return &served{base: logs.waitAddr(t), logs: logs, stop: stop}
}

// resender sends deliveries 0..total-1 (ids prefix-NNNNN) from senders
// clients. Each is sent again until a server acknowledges it, as GitHub's
// redelivery (or changegate's sweep) would, to the server target names for
// that attempt; acked counts them. It gives up after 10 minutes. Wait for
// it with the returned function.
func resender(t *testing.T, total, senders int, prefix string, body func(i int) (string, []byte),
	target func(i, attempt int) string, acked *atomic.Int64) (wait func()) {
	t.Helper()
	var next atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	began := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				event, b := body(i)
				id := fmt.Sprintf("%s-%05d", prefix, i)
				for attempt := 0; ; attempt++ {
					status, err := sendWebhook(context.Background(), client, target(i, attempt), []byte(ghSecret), event, id, b)
					if err == nil && status == http.StatusAccepted {
						acked.Add(1)
						break
					}
					if time.Since(began) > 10*time.Minute {
						t.Errorf("delivery %s never acknowledged: %d %v", id, status, err)
						return
					}
					time.Sleep(10 * time.Millisecond) // down: send it again
				}
			}
		})
	}
	return wg.Wait
}
