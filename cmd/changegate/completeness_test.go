package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
)

// TestRedeliverySweep: GitHub's delivery log holds deliveries that
// succeeded, failed and were processed anyway, failed and were retried by
// hand, and failed too long ago. Exactly the one that failed and that
// changegate never received is redelivered, once, and processed.
func TestRedeliverySweep(t *testing.T) {
	t.Parallel()
	a := startAppWith(t, map[string]string{"CHANGEGATE_REDELIVERY_INTERVAL": "1s"})
	a.jf.SetStatus("PAY-123", "Approved")
	gh := a.gh
	gh.SetHookTarget(a.base+"/webhooks/github", []byte(ghSecret))
	head := strings.Repeat("9", 40)
	a.compliantPR(95, head)
	missed := []byte(strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, head), `"number":51`, `"number":95`))
	processed := []byte(strings.ReplaceAll(prEvent("opened", 7), sha1, strings.Repeat("8", 40)))
	// changegate acknowledged this one, though GitHub logged a timeout.
	if status, err := sendWebhook(t.Context(), a.client, a.base, []byte(ghSecret), "pull_request", "g-processed", processed); err != nil || status != http.StatusAccepted {
		t.Fatalf("deliver g-processed: %d %v", status, err)
	}
	now := time.Now()
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-old", Event: "pull_request", Action: "opened", StatusCode: 502, DeliveredAt: now.Add(-100 * time.Hour), Payload: missed})
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-retried", Event: "pull_request", Action: "opened", StatusCode: 502, DeliveredAt: now.Add(-2 * time.Hour), Payload: missed})
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-retried", Event: "pull_request", Action: "opened", StatusCode: 202, Redelivery: true, DeliveredAt: now.Add(-time.Hour), Payload: missed})
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-ok", Event: "pull_request", Action: "opened", StatusCode: 202, DeliveredAt: now.Add(-time.Hour), Payload: missed})
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-processed", Event: "pull_request", Action: "opened", StatusCode: 504, DeliveredAt: now.Add(-time.Hour), Payload: processed})
	lost := gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-lost", Event: "pull_request", Action: "opened", StatusCode: 0, DeliveredAt: now.Add(-time.Minute), Payload: missed})

	eventually(t, "the lost delivery redelivered and evaluated", 30*time.Second, func() bool {
		return len(a.conclusionsOn(head)) > 0
	})
	time.Sleep(3 * time.Second) // a few more sweeps
	if got := gh.Redeliveries(); !slices.Equal(got, []int64{lost.ID}) {
		t.Errorf("redelivered %v, want only g-lost (%d)", got, lost.ID)
	}
	_, metrics := getBody(t, a.base+"/metrics")
	mustContain(t, metrics, "changegate_redelivery_sweep_redelivered_total 1", "changegate_redelivery_sweep_missing_total 1")
}
