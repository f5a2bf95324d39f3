package ghapp

import (
	"bytes"
	"container/list"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
)

// etagCache remembers GitHub responses that carry an ETag so that repeated
// reads become conditional requests: a 304 costs no rate limit. It is an LRU
// bounded in entries and bytes, shared by all clients of one Apps and
// partitioned by scope, because responses differ per installation token.
type etagCache struct {
	maxEntries, maxBytes, maxEntry int

	mu    sync.Mutex
	bytes int
	lru   *list.List // of *cached, most recently used first
	items map[string]*list.Element
}

type cached struct {
	key    string
	etag   string
	header http.Header
	body   []byte
}

func newETagCache(maxEntries, maxBytes, maxEntry int) *etagCache {
	return &etagCache{maxEntries: maxEntries, maxBytes: maxBytes, maxEntry: maxEntry, lru: list.New(), items: map[string]*list.Element{}}
}

func (c *etagCache) transport(scope string, next http.RoundTripper) http.RoundTripper {
	return &etagTransport{cache: c, scope: scope, next: next}
}

func (c *etagCache) get(key string) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cached)
}

func (c *etagCache) put(v *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[v.key]; ok {
		c.remove(e)
	}
	c.items[v.key] = c.lru.PushFront(v)
	c.bytes += len(v.body)
	for c.lru.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

func (c *etagCache) remove(e *list.Element) {
	v := c.lru.Remove(e).(*cached)
	delete(c.items, v.key)
	c.bytes -= len(v.body)
}

func (c *etagCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

type etagTransport struct {
	cache *etagCache
	scope string
	next  http.RoundTripper
}

func (t *etagTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if (req.Method != http.MethodGet && req.Method != http.MethodHead) ||
		req.Header.Get("If-None-Match") != "" || req.Header.Get("If-Modified-Since") != "" || req.Header.Get("Range") != "" {
		return t.next.RoundTrip(req) // the caller manages its own validators
	}
	key := t.scope + "\x00" + req.Method + "\x00" + req.URL.String() + "\x00" + req.Header.Get("Accept")
	hit := t.cache.get(key)
	out := req
	if hit != nil {
		out = req.Clone(req.Context()) // a RoundTripper must not modify req
		out.Header.Set("If-None-Match", hit.etag)
	}
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && hit != nil:
		return revalidated(req, resp, hit), nil
	case resp.StatusCode == http.StatusOK && (resp.Header.Get("ETag") != "" || isJSON(resp.Header.Get("Content-Type"))):
		return t.store(key, resp)
	}
	return resp, nil
}

// store reads a 200 response whole, unless its body is too large, and
// hands the caller an equivalent response: cached when it has an ETag,
// and errCutShort, never cached, for a JSON body cut short (by a proxy, or
// a connection lost mid-answer), which the retries above try again. A
// revalidated answer comes from the cache, which holds only whole bodies.
func (t *etagTransport) store(key string, resp *http.Response) (*http.Response, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(t.cache.maxEntry)+1))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if len(body) > t.cache.maxEntry {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	if isJSON(resp.Header.Get("Content-Type")) && !json.Valid(body) {
		return nil, errCutShort
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if etag := resp.Header.Get("ETag"); etag != "" {
		t.cache.put(&cached{key: key, etag: etag, header: resp.Header.Clone(), body: body})
	}
	return resp, nil
}

// errCutShort is a JSON body that ended before its value did.
var errCutShort = errors.New("github: response body cut short")

func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// revalidated turns a 304 into the cached 200, so go-github decodes it as
// usual, with the 304's fresh rate-limit headers.
func revalidated(req *http.Request, resp *http.Response, hit *cached) *http.Response {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	h := hit.header.Clone()
	for k, v := range resp.Header {
		if strings.HasPrefix(k, "X-Ratelimit-") || k == "Date" {
			h[k] = v
		}
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         resp.Proto,
		ProtoMajor:    resp.ProtoMajor,
		ProtoMinor:    resp.ProtoMinor,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(hit.body)),
		ContentLength: int64(len(hit.body)),
		Request:       req,
		TLS:           resp.TLS,
	}
}
