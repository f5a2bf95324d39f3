package ghfake

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HookDelivery is one delivery of the App's webhook, as GitHub's
// "Recent deliveries" lists it. Payload is what a redelivery sends again.
type HookDelivery struct {
	ID             int64 // assigned when zero
	GUID           string
	Event, Action  string
	StatusCode     int // the App server's answer; 0 for "failed to connect"
	DeliveredAt    time.Time
	Redelivery     bool
	InstallationID int64
	Payload        []byte
}

// hookState is the App webhook's delivery log and where redeliveries go.
type hookState struct {
	deliveries   []HookDelivery // oldest first
	target       string
	secret       []byte
	redeliveries []int64
}

func (s *Server) hookRoutes() {
	s.Handle("GET", "/app/hook/deliveries", s.listHookDeliveries)
	s.Handle("POST", "/app/hook/deliveries/{delivery_id}/attempts", s.redeliver)
}

// AddHookDelivery logs a delivery and returns it with its ID.
func (s *Server) AddHookDelivery(d HookDelivery) HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addHookDelivery(d)
}

func (s *Server) addHookDelivery(d HookDelivery) HookDelivery {
	if d.ID == 0 {
		d.ID = s.newID()
	}
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = s.now()
	}
	s.hooks.deliveries = append(s.hooks.deliveries, d)
	return d
}

// SetHookTarget makes redeliveries POST to url, signed with secret, as
// GitHub does.
func (s *Server) SetHookTarget(url string, secret []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks.target, s.hooks.secret = url, slices.Clone(secret)
}

// Redeliveries are the delivery IDs redelivery was asked for, in order.
func (s *Server) Redeliveries() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hooks.redeliveries)
}

// listHookDeliveries answers newest first. The cursor is opaque to
// clients; here it names the last ID of the previous page, and the next
// page's cursor is in the Link header, as GitHub sends it.
func (s *Server) listHookDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	per = min(cmp.Or(per, 30), 100)
	after, _ := strconv.ParseInt(strings.TrimPrefix(q.Get("cursor"), "v1_"), 10, 64)
	s.mu.Lock()
	out := []map[string]any{}
	next := int64(0)
	for _, d := range slices.Backward(s.hooks.deliveries) {
		if after != 0 && d.ID >= after {
			continue
		}
		if st := q.Get("status"); st == "success" && !ok2xx(d.StatusCode) || st == "failure" && ok2xx(d.StatusCode) {
			continue
		}
		if len(out) == per {
			next = out[len(out)-1]["id"].(int64)
			break
		}
		out = append(out, hookDeliveryJSON(d))
	}
	s.mu.Unlock()
	if next != 0 {
		u := *r.URL
		v := u.Query()
		v.Set("cursor", "v1_"+strconv.FormatInt(next, 10))
		u.RawQuery = v.Encode()
		w.Header().Set("Link", "<"+s.srv.URL+u.Path+"?"+u.RawQuery+`>; rel="next"`)
	}
	WriteJSON(w, http.StatusOK, out)
}

func ok2xx(code int) bool { return code >= 200 && code < 400 }

func hookDeliveryJSON(d HookDelivery) map[string]any {
	status := "OK"
	if !ok2xx(d.StatusCode) {
		status = "Invalid HTTP Response: " + strconv.Itoa(d.StatusCode)
		if d.StatusCode == 0 {
			status = "failed to connect"
		}
	}
	var action any
	if d.Action != "" {
		action = d.Action
	}
	return map[string]any{"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.UTC().Format(time.RFC3339), "redelivery": d.Redelivery,
		"duration": 0.1, "status": status, "status_code": d.StatusCode, "event": d.Event, "action": action,
		"installation_id": d.InstallationID, "repository_id": nil, "throttled_at": nil}
}

// redeliver sends a delivery's payload again to the hook target, under the
// same GUID, and logs the attempt as a new delivery.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("delivery_id"), 10, 64)
	s.mu.Lock()
	i := slices.IndexFunc(s.hooks.deliveries, func(d HookDelivery) bool { return d.ID == id })
	if i < 0 {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	d, target, secret := s.hooks.deliveries[i], s.hooks.target, s.hooks.secret
	s.hooks.redeliveries = append(s.hooks.redeliveries, id)
	s.mu.Unlock()
	d.ID, d.Redelivery, d.DeliveredAt, d.StatusCode = 0, true, time.Time{}, 0
	if target != "" {
		d.StatusCode = post(target, secret, d)
	}
	s.mu.Lock()
	s.addHookDelivery(d)
	s.mu.Unlock()
	WriteJSON(w, http.StatusAccepted, map[string]any{})
}

// post sends one delivery as GitHub does and returns the answer's status.
func post(target string, secret []byte, d HookDelivery) int {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(d.Payload))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.GUID)
	mac := hmac.New(sha256.New, secret)
	mac.Write(d.Payload)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
