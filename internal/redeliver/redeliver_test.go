package redeliver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/redeliver"
)

type store struct {
	known, asked map[string]bool
	cursor       int64
}

func (s *store) KnownDeliveries(_ context.Context, g []string) (map[string]bool, error) {
	return pick(s.known, g), nil
}
func (s *store) Redelivered(_ context.Context, g []string) (map[string]bool, error) {
	return pick(s.asked, g), nil
}
func (s *store) SweepCursor(context.Context) (int64, error) { return s.cursor, nil }

func pick(m map[string]bool, keys []string) map[string]bool {
	out := map[string]bool{}
	for _, k := range keys {
		if m[k] {
			out[k] = true
		}
	}
	return out
}

// TestSweepPagesToTheCursor: the sweep follows GitHub's cursor pages,
// stops at the stored cursor, and asks only for what failed and is not
// held or asked for already.
func TestSweepPagesToTheCursor(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(t)
	apps, err := ghapp.New(ghapp.Config{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()}, ghapp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var ids []int64
	for i := range 250 {
		code := 202
		if i%50 == 7 {
			code = 502 // failed: 7, 57, 107, 157, 207
		}
		d := gh.AddHookDelivery(ghfake.HookDelivery{GUID: fmt.Sprintf("g%d", i), Event: "push", StatusCode: code, DeliveredAt: now.Add(time.Duration(i-250) * time.Minute)})
		ids = append(ids, d.ID)
	}
	st := &store{known: map[string]bool{"g107": true}, asked: map[string]bool{"g157": true}, cursor: ids[20]}
	s := &redeliver.Sweeper{App: apps.AppClient, Store: st, Now: time.Now, Metrics: redeliver.NewMetrics(prometheus.NewRegistry())}
	res, err := s.Sweep(t.Context(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	for _, a := range res.Asked {
		asked = append(asked, a.GUID)
	}
	// g7 is before the cursor; g107 is held; g157 was asked for before.
	if !slices.Equal(asked, []string{"g57", "g207"}) || res.Seen != 229 || res.Cursor != ids[249] {
		t.Errorf("asked %v, seen %d, cursor %d (want %d)", asked, res.Seen, res.Cursor, ids[249])
	}
	if got := gh.Redeliveries(); len(got) != 2 {
		t.Errorf("redeliveries %v", got)
	}
}

// TestSweepWithoutWebhook: GitHub answers 404 when the App has no webhook;
// the sweep then has nothing to do, and is not an error.
func TestSweepWithoutWebhook(t *testing.T) {
	t.Parallel()
	gh := ghfake.New(t)
	apps, err := ghapp.New(ghapp.Config{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()}, ghapp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gh.FailNext(ghfake.MatchRoute("GET /app/hook/deliveries"), 1, http.StatusNotFound, nil, "")
	s := &redeliver.Sweeper{App: apps.AppClient, Store: &store{}, Now: time.Now, Metrics: redeliver.NewMetrics(prometheus.NewRegistry())}
	if res, err := s.Sweep(t.Context(), slog.New(slog.DiscardHandler)); err != nil || res.Seen != 0 || len(res.Asked) != 0 {
		t.Errorf("%+v %v", res, err)
	}
}
