package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/changegate/changegate/internal/audit"
	"github.com/changegate/changegate/internal/evidence"
)

// SampleWire is a sample request as POST /api/v1/samples takes it, and, normalised,
// what a sample id encodes. Dates are a date (2026-01-01) or RFC 3339 on
// the way in, RFC 3339 UTC in an id.
type SampleWire struct {
	From              string   `json:"from"`
	To                string   `json:"to"`
	Repo              string   `json:"repo,omitempty"`
	Types             []string `json:"types,omitempty"`
	Size              int      `json:"size,omitempty"`
	Frequency         string   `json:"frequency,omitempty"`
	Seed              string   `json:"seed,omitempty"`
	Nonce             string   `json:"auditor_nonce,omitempty"`
	Checkpoint        uint64   `json:"checkpoint,omitempty"`
	IncludeExceptions bool     `json:"include_exceptions,omitempty"`
}

// maxSampleBody bounds a sample request; a real one is a few hundred bytes.
const maxSampleBody = 64 << 10

func decodeSampleWire(r io.Reader) (SampleWire, error) {
	var w SampleWire
	dec := json.NewDecoder(io.LimitReader(r, maxSampleBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return w, &audit.FlagError{Flag: "body", Problem: fmt.Sprintf("is not a sample request: %v", err)}
	}
	if dec.More() {
		return w, &audit.FlagError{Flag: "body", Problem: "holds more than one JSON value"}
	}
	return w, nil
}

// request turns the wire form into a SampleRequest, not yet validated.
func (w SampleWire) request() (audit.SampleRequest, error) {
	v := url.Values{"from": {w.From}, "to": {w.To}, "repo": {w.Repo}, "type": w.Types}
	var err error
	req := audit.SampleRequest{Size: w.Size, Frequency: strings.TrimSpace(w.Frequency), Seed: w.Seed, Nonce: w.Nonce,
		CheckpointSize: w.Checkpoint, IncludeExceptions: w.IncludeExceptions}
	if req.Query.From, err = parseDate(v, "from"); err != nil {
		return req, err
	}
	if req.Query.To, err = parseDate(v, "to"); err != nil {
		return req, err
	}
	req.Query.Repo = strings.TrimSpace(w.Repo)
	req.Query.Types = splitList(w.Types)
	return req, nil
}

// pinSample settles the checkpoint a sample is drawn at (the latest when
// the request names none) and validates the request as the package build
// will.
func pinSample(ctx context.Context, svc Auditor, req audit.SampleRequest) (audit.SampleRequest, audit.Checkpoint, error) {
	latest, err := svc.Latest(ctx)
	if err != nil {
		return req, audit.Checkpoint{}, err
	}
	switch {
	case req.CheckpointSize == 0 && req.Nonce == "":
		req.CheckpointSize = latest.Size
	case req.CheckpointSize > latest.Size:
		return req, audit.Checkpoint{}, &audit.FlagError{Flag: "checkpoint",
			Problem: fmt.Sprintf("%d is beyond the log's latest checkpoint, %d", req.CheckpointSize, latest.Size)}
	}
	if err := req.Validate(); err != nil {
		return req, audit.Checkpoint{}, err
	}
	if req.CheckpointSize == latest.Size {
		return req, latest, nil
	}
	cp, err := svc.At(ctx, req.CheckpointSize)
	if err != nil {
		return req, audit.Checkpoint{}, &audit.FlagError{Flag: "checkpoint", Problem: fmt.Sprintf("%d: %v", req.CheckpointSize, err)}
	}
	return req, cp, nil
}

// sampleID is a pinned request's id: the canonical JSON of its wire form,
// base64url. The id is the request, so the server keeps nothing, and the
// same request at the same checkpoint always has the same id.
func sampleID(req audit.SampleRequest) (string, error) {
	b, err := evidence.Canonical(wireOf(req))
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func wireOf(req audit.SampleRequest) SampleWire {
	return SampleWire{
		From: req.Query.From.UTC().Format(time.RFC3339), To: req.Query.To.UTC().Format(time.RFC3339),
		Repo: req.Query.Repo, Types: req.Query.Types, Size: req.Size, Frequency: req.Frequency,
		Seed: req.Seed, Nonce: req.Nonce, Checkpoint: req.CheckpointSize, IncludeExceptions: req.IncludeExceptions,
	}
}

// maxSampleID bounds an id in a URL.
const maxSampleID = 4096

var errNotSampleID = errors.New("not a sample id")

// parseSampleID decodes an id sampleID made. Only the canonical form is
// accepted, so one package has exactly one id.
func parseSampleID(id string) (audit.SampleRequest, error) {
	if len(id) > maxSampleID {
		return audit.SampleRequest{}, errNotSampleID
	}
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return audit.SampleRequest{}, errNotSampleID
	}
	w, err := decodeSampleWire(bytes.NewReader(b))
	if err != nil {
		return audit.SampleRequest{}, errNotSampleID
	}
	req, err := w.request()
	if err != nil || req.CheckpointSize == 0 || req.Validate() != nil {
		return audit.SampleRequest{}, errNotSampleID
	}
	if again, err := sampleID(req); err != nil || again != id {
		return audit.SampleRequest{}, errNotSampleID
	}
	return req, nil
}

// sampleName is the package's file name.
func sampleName(req audit.SampleRequest) string {
	return "sample-" + periodName(req.Query.From) + "-" + periodName(req.Query.To) + "-at-" + strconv.FormatUint(req.CheckpointSize, 10) + ".zip"
}
