package audit

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/changegate/changegate/internal/evidence"
)

// PackageError names the file of a package that failed verification.
type PackageError struct {
	File    string
	Problem string
}

func (e *PackageError) Error() string {
	if e.File == "" {
		return e.Problem
	}
	return e.File + ": " + e.Problem
}

func bad(file, format string, args ...any) error {
	return &PackageError{File: file, Problem: fmt.Sprintf(format, args...)}
}

// TrustedKey is the key a verification trusts: a public key the auditor
// holds, or only its fingerprint (then the package's own key must have
// it). With neither, the package's key is used and the report says so.
type TrustedKey struct {
	Public      ed25519.PublicKey
	Fingerprint string // hex, with or without "SHA256:"
}

// PackageReport is what a package that verified holds.
type PackageReport struct {
	Kind        string
	Records     int
	Population  int
	Checkpoint  CheckpointJSON
	Fingerprint string
	// KeyFromPackage says the key was the package's own: compare the
	// fingerprint with one obtained separately.
	KeyFromPackage bool
}

// Limits on what verify reads, so that a hostile zip cannot exhaust memory.
const (
	maxPackageFile  = 1 << 30
	maxPackageTotal = 2 << 30
)

// VerifyPackage checks an evidence package offline; see VERIFY.txt. The
// first failure is returned as a *PackageError naming the file.
func VerifyPackage(r io.ReaderAt, size int64, trust TrustedKey) (*PackageReport, error) {
	v := &packageVerifier{rootOfLeaves: func() ([]byte, error) { return nil, errors.New("no leaves read") }}
	files, err := readPackage(r, size, func(leaves []byte) { v.rootOfLeaves = rootLater(leaves) })
	if err != nil {
		return nil, err
	}
	v.files = files
	if err := v.verify(trust); err != nil {
		return nil, err
	}
	return v.report, nil
}

// readPackage reads every file of the zip, refusing names that could
// escape a directory it is unpacked into, and duplicates.
// The leaf hashes are read first and handed to leaves, so that their root
// is rebuilt while the rest is inflated.
func readPackage(r io.ReaderAt, size int64, leaves func([]byte)) (map[string][]byte, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, bad("", "not a readable zip archive: %v", err)
	}
	entries := slices.Clone(zr.File)
	slices.SortStableFunc(entries, func(a, b *zip.File) int {
		return cmpBool(b.Name == fileLeaves, a.Name == fileLeaves)
	})
	files := map[string][]byte{}
	var total uint64
	for _, f := range entries {
		// A directory entry holds nothing: zip tools add them when a
		// package is unpacked and packed again.
		if strings.HasSuffix(f.Name, "/") && f.UncompressedSize64 == 0 {
			continue
		}
		if err := checkName(f.Name); err != nil {
			return nil, err
		}
		if _, dup := files[f.Name]; dup {
			return nil, bad(f.Name, "appears twice in the archive")
		}
		// Counted before anything is allocated: sizes are what the archive
		// declares, and the reader holds each file to its size.
		if total += f.UncompressedSize64; total > maxPackageTotal {
			return nil, bad(f.Name, "the archive unpacks to more than %d bytes", int64(maxPackageTotal))
		}
		data, err := readEntry(f)
		if err != nil {
			return nil, err
		}
		if _, dup := files[f.Name]; !dup && f.Name == fileLeaves {
			leaves(data)
		}
		files[f.Name] = data
	}
	return files, nil
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func checkName(name string) error {
	switch {
	case name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || strings.ContainsRune(name, 0):
		return bad(name, "is not a relative path inside the archive")
	case path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../"):
		return bad(name, "points outside the archive or is not a clean path")
	case strings.HasSuffix(name, "/"):
		return bad(name, "is a directory entry with data in it")
	}
	return nil
}

func readEntry(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxPackageFile {
		return nil, bad(f.Name, "is larger than %d bytes", maxPackageFile)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, bad(f.Name, "cannot be read: %v", err)
	}
	defer rc.Close()
	// The size the archive declares, checked by the reader against what
	// it inflates (with the CRC), so the buffer is allocated once.
	data := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, bad(f.Name, "cannot be read (truncated or corrupt): %v", err)
	}
	if n, err := rc.Read(make([]byte, 1)); n > 0 || !errors.Is(err, io.EOF) {
		return nil, bad(f.Name, "does not match its size or checksum in the archive: %v", err)
	}
	return data, nil
}

type packageVerifier struct {
	files map[string][]byte
	// rootOfLeaves waits for the root of the leaf hashes, rebuilt on the
	// other core while the first checks run.
	rootOfLeaves func() ([]byte, error)
	pub          ed25519.PublicKey
	verifier     *evidence.Verifier
	m            PackageManifest
	root         []byte
	leaves       []byte
	rows         map[string][]string // record id → population cells
	seqs         map[string]uint64
	exc          map[string]bool // record id → row has an exception
	order        []string        // population ids in file order
	report       *PackageReport
}

func (v *packageVerifier) verify(trust TrustedKey) error {
	steps := []func() error{
		func() error { return v.key(trust) },
		v.manifest,
		v.fileHashes,
		v.checkpoint,
		v.leafHashes,
		v.population,
		v.records,
		v.selection,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	v.report.Kind, v.report.Records, v.report.Population = v.m.Kind, len(v.m.Sample), len(v.order)
	v.report.Checkpoint = v.m.Checkpoint
	return nil
}

func (v *packageVerifier) need(name string) ([]byte, error) {
	data, ok := v.files[name]
	if !ok {
		return nil, bad(name, "is missing from the package")
	}
	return data, nil
}

// key settles the public key every signature is checked against.
func (v *packageVerifier) key(trust TrustedKey) error {
	data, err := v.need(filePubkey)
	if err != nil {
		return err
	}
	own, err := parsePublicKey(data)
	if err != nil {
		return bad(filePubkey, "%v", err)
	}
	v.report = &PackageReport{}
	fromPackage, problem := checkTrust(own, trust)
	if problem != "" {
		return bad(filePubkey, "%s", problem)
	}
	v.report.KeyFromPackage = fromPackage
	v.pub = own
	v.report.Fingerprint = "SHA256:" + evidence.Fingerprint(own)
	v.verifier, err = evidence.NewVerifier(own)
	return err
}

// checkTrust says whether own is the key trust names: a problem when it
// is not, and fromPackage when trust names none.
func checkTrust(own ed25519.PublicKey, trust TrustedKey) (fromPackage bool, problem string) {
	switch {
	case trust.Public != nil:
		if !own.Equal(trust.Public) {
			return false, fmt.Sprintf("is key SHA256:%s, not the key you trust (SHA256:%s)", evidence.Fingerprint(own), evidence.Fingerprint(trust.Public))
		}
	case trust.Fingerprint != "":
		want := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(trust.Fingerprint, "SHA256:"), "sha256:"))
		if evidence.Fingerprint(own) != want {
			return false, fmt.Sprintf("has fingerprint SHA256:%s, not SHA256:%s", evidence.Fingerprint(own), want)
		}
	default:
		return true, ""
	}
	return false, ""
}

func parsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an ed25519 key", k)
	}
	return pub, nil
}

// signed checks that the envelope in dsseName signs exactly the bytes of
// name, and returns them.
func (v *packageVerifier) signed(name, dsseName string) ([]byte, error) {
	data, err := v.need(name)
	if err != nil {
		return nil, err
	}
	env, err := v.need(dsseName)
	if err != nil {
		return nil, err
	}
	payload, err := v.verifier.OpenPayload(env, ManifestPayloadType)
	if err != nil {
		return nil, bad(dsseName, "%v", err)
	}
	if !bytes.Equal(payload, data) {
		return nil, bad(name, "is not the document its signature %s signs", dsseName)
	}
	return data, nil
}

func (v *packageVerifier) manifest() error {
	data, err := v.signed(fileManifest, fileManifestDSSE)
	if err != nil {
		return err
	}
	if err := strictJSON(data, &v.m); err != nil {
		return bad(fileManifest, "%v", err)
	}
	if v.m.Type != PackageManifestType {
		return bad(fileManifest, "_type is %q, want %q", v.m.Type, PackageManifestType)
	}
	if v.m.PublicKey.Fingerprint != v.report.Fingerprint {
		return bad(fileManifest, "names key %s, but is signed by %s", v.m.PublicKey.Fingerprint, v.report.Fingerprint)
	}
	return nil
}

func strictJSON(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// fileHashes: every file but the manifest and its signature is listed
// with its SHA-256, and every listed file is there.
func (v *packageVerifier) fileHashes() error {
	names := make([]string, 0, len(v.files))
	for name := range v.files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == fileManifest || name == fileManifestDSSE {
			continue
		}
		want, ok := v.m.Files[name]
		if !ok {
			return bad(name, "is not listed in %s: it was added", fileManifest)
		}
		if got := sha256Hex(v.files[name]); got != want {
			return bad(name, "has SHA-256 %s, but %s lists %s: it was edited", got, fileManifest, want)
		}
	}
	listed := make([]string, 0, len(v.m.Files))
	for name := range v.m.Files {
		listed = append(listed, name)
	}
	slices.Sort(listed)
	for _, name := range listed {
		if _, ok := v.files[name]; !ok {
			return bad(name, "is listed in %s but missing: it was removed", fileManifest)
		}
	}
	return nil
}

func (v *packageVerifier) checkpoint() error {
	data, _ := v.need(fileCheckpoint)
	nv, err := evidence.NoteVerifier(v.m.Checkpoint.Origin, v.pub)
	if err != nil {
		return bad(fileManifest, "checkpoint origin %q: %v", v.m.Checkpoint.Origin, err)
	}
	cp, err := evidence.VerifyCheckpoint(data, nv)
	if err != nil {
		return bad(fileCheckpoint, "%v", err)
	}
	if cp.Size != v.m.Checkpoint.Size || hex.EncodeToString(cp.Hash) != v.m.Checkpoint.Root || string(data) != v.m.Checkpoint.Note {
		return bad(fileManifest, "its checkpoint is not the one in %s", fileCheckpoint)
	}
	v.root = cp.Hash
	return nil
}

// leafHashes rebuilds the checkpoint's root from every leaf of the log.
func (v *packageVerifier) leafHashes() error {
	data, _ := v.need(fileLeaves)
	size := v.m.Checkpoint.Size
	if uint64(len(data)) != size*sha256.Size {
		return bad(fileLeaves, "holds %d bytes, want %d leaf hashes of 32 bytes for the checkpoint's size", len(data), size)
	}
	root, err := v.rootOfLeaves()
	if err != nil {
		return bad(fileLeaves, "%v", err)
	}
	if !bytes.Equal(root, v.root) {
		return bad(fileLeaves, "the leaf hashes give root %x, not the checkpoint's %x", root, v.root)
	}
	v.leaves = data
	return nil
}

// rootLater rebuilds the root of leaves in the background.
func rootLater(leaves []byte) func() ([]byte, error) {
	type result struct {
		root []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		root, err := evidence.RootOfLeaves(leaves)
		done <- result{root, err}
	}()
	return func() ([]byte, error) {
		r := <-done
		return r.root, r.err
	}
}

func (v *packageVerifier) leafAt(seq uint64) ([]byte, bool) {
	if seq >= v.m.Checkpoint.Size {
		return nil, false
	}
	return v.leaves[seq*sha256.Size : (seq+1)*sha256.Size], true
}

// population checks the population file against its signed manifest and
// places every row at its leaf of the log.
func (v *packageVerifier) population() error {
	data, err := v.signed(filePopManifest, filePopManifestDSSE)
	if err != nil {
		return err
	}
	var pm PopulationManifest
	if err := strictJSON(data, &pm); err != nil {
		return bad(filePopManifest, "%v", err)
	}
	file, _ := v.need(filePopulation)
	switch {
	case pm.Type != PopulationManifestType:
		return bad(filePopManifest, "_type is %q, want %q", pm.Type, PopulationManifestType)
	case pm.File != filePopulation:
		return bad(filePopManifest, "describes %q, not %s", pm.File, filePopulation)
	case pm.SHA256 != sha256Hex(file):
		return bad(filePopulation, "has SHA-256 %s, but its signed manifest says %s", sha256Hex(file), pm.SHA256)
	case pm.Checkpoint != v.m.Checkpoint:
		return bad(filePopManifest, "was read at another checkpoint than the package's")
	case v.m.Query != nil && !sameQuery(pm.Query, *v.m.Query):
		return bad(filePopManifest, "states another query than %s", fileManifest)
	}
	if err := v.rowsOf(file); err != nil {
		return err
	}
	if len(v.order) != pm.Rows {
		return bad(filePopulation, "has %d rows, but its signed manifest says %d", len(v.order), pm.Rows)
	}
	return nil
}

// rowsOf reads the population CSV.
func (v *packageVerifier) rowsOf(file []byte) error {
	cr := csv.NewReader(bytes.NewReader(file))
	cr.ReuseRecord = true // only the picked rows' cells are kept, copied
	picked := make(map[string]bool, len(v.m.Sample))
	for _, p := range v.m.Sample {
		picked[p.ID] = true
	}
	header, err := cr.Read()
	if err != nil || !slices.Equal(header, Header()) {
		return bad(filePopulation, "does not start with the population header")
	}
	v.rows, v.seqs, v.exc = map[string][]string{}, map[string]uint64{}, map[string]bool{}
	for line := 2; ; line++ {
		cells, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return bad(filePopulation, "%v", err)
		}
		if err := v.row(line, cells, picked); err != nil {
			return err
		}
	}
}

func (v *packageVerifier) row(line int, cells []string, picked map[string]bool) error {
	if len(cells) != len(columns) {
		return bad(filePopulation, "line %d has %d cells, want %d", line, len(cells), len(columns))
	}
	seq, err := strconv.ParseUint(cells[0], 10, 64)
	if err != nil {
		return bad(filePopulation, "line %d: seq %q is not a number", line, cells[0])
	}
	id, leaf := cells[1], cells[2]
	want, ok := v.leafAt(seq)
	if !ok {
		return bad(filePopulation, "line %d: record %d lies beyond the checkpoint's %d records", line, seq, v.m.Checkpoint.Size)
	}
	if leaf != hex.EncodeToString(want) {
		return bad(filePopulation, "line %d: record %d's leaf hash %s is not the log's leaf %x at %d", line, seq, leaf, want, seq)
	}
	if _, dup := v.seqs[id]; dup {
		return bad(filePopulation, "line %d: record %s appears twice", line, id)
	}
	id = strings.Clone(id) // the reader reuses its record
	v.seqs[id], v.exc[id] = seq, cells[exceptionColumn] != ""
	if picked[id] {
		v.rows[id] = slices.Clone(cells)
		for i := range v.rows[id] {
			v.rows[id][i] = strings.Clone(v.rows[id][i])
		}
	}
	v.order = append(v.order, id)
	return nil
}

var exceptionColumn = columnIndex("exception")

func columnIndex(name string) int {
	return slices.IndexFunc(columns, func(c column) bool { return c.name == name })
}

// records checks each picked record: signature, leaf, proof, row.
func (v *packageVerifier) records() error {
	for _, pick := range v.m.Sample {
		if err := v.record(pick); err != nil {
			return err
		}
	}
	return nil
}

func (v *packageVerifier) record(pick Pick) error {
	dir := recordDir(pick)
	env, err := v.need(dir + fileEnvelope)
	if err != nil {
		return err
	}
	rec, err := v.verifier.VerifyEnvelope(env)
	if err != nil {
		return bad(dir+fileEnvelope, "%v", err)
	}
	if rec.ID != pick.ID {
		return bad(dir+fileEnvelope, "is record %s, not %s", rec.ID, pick.ID)
	}
	leaf := evidence.LeafHash(env)
	want, ok := v.leafAt(pick.Seq)
	if !ok || !bytes.Equal(leaf, want) {
		return bad(dir+fileEnvelope, "its leaf hash %x is not the log's leaf at %d", leaf, pick.Seq)
	}
	if err := v.proof(dir+fileProof, pick.Seq, leaf); err != nil {
		return err
	}
	if readable, err := ReadableRecord(env); err != nil || !bytes.Equal(readable, v.files[dir+fileRecord]) {
		return bad(dir+fileRecord, "is not the record its envelope signs")
	}
	return v.matchesRow(dir+fileEnvelope, pick, rec)
}

func (v *packageVerifier) proof(name string, seq uint64, leaf []byte) error {
	data, err := v.need(name)
	if err != nil {
		return err
	}
	var p Proof
	if err := strictJSON(data, &p); err != nil {
		return bad(name, "%v", err)
	}
	hashes := make([][]byte, len(p.Hashes))
	for i, h := range p.Hashes {
		if hashes[i], err = hex.DecodeString(h); err != nil {
			return bad(name, "hash %d: %v", i, err)
		}
	}
	if p.Seq != seq || p.TreeSize != v.m.Checkpoint.Size {
		return bad(name, "proves record %d in %d records, not %d in the checkpoint's %d", p.Seq, p.TreeSize, seq, v.m.Checkpoint.Size)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, seq, p.TreeSize, leaf, hashes, v.root); err != nil {
		return bad(name, "does not prove the record in the checkpoint: %v", err)
	}
	return nil
}

// matchesRow: the record is a row of the population, and the row's
// columns that the record alone decides are what the record says.
func (v *packageVerifier) matchesRow(name string, pick Pick, rec *evidence.Record) error {
	cells, ok := v.rows[pick.ID]
	if !ok || v.seqs[pick.ID] != pick.Seq {
		return bad(name, "record %d (%s) is not a row of %s", pick.Seq, pick.ID, filePopulation)
	}
	leaf, _ := v.leafAt(pick.Seq)
	want := (&Row{Seq: pick.Seq, LeafHash: leaf, Summary: evidence.Summarize(rec)}).Cells()
	for i, c := range columns {
		if logDependent[c.name] {
			continue
		}
		if cells[i] != want[i] {
			return bad(filePopulation, "record %d's %s is %q, but the signed record says %q", pick.Seq, c.name, cells[i], want[i])
		}
	}
	return nil
}

// logDependent columns depend on other records of the log, not on the
// record alone.
var logDependent = map[string]bool{"deployed_at": true, "exception_state": true, "closed_by": true}

// selection recomputes a sample from the population and its key.
func (v *packageVerifier) selection() error {
	switch v.m.Kind {
	case "export":
		return v.chosen()
	case "sample":
	default:
		return bad(fileManifest, "kind %q is neither sample nor export", v.m.Kind)
	}
	sel := v.m.Selection
	if sel == nil {
		return bad(fileManifest, "a sample without its selection")
	}
	key, err := v.sampleKey(sel)
	if err != nil {
		return err
	}
	rows := make([]Entry, len(v.order))
	for i, id := range v.order {
		rows[i] = Entry{Seq: v.seqs[id], ID: id, Exception: v.exc[id]}
	}
	if sel.Size > len(rows) {
		return bad(fileManifest, "samples %d of a population of %d", sel.Size, len(rows))
	}
	want := Draw(rows, key, sel.Size, sel.IncludeExceptions)
	if !slices.Equal(want, v.m.Sample) {
		return bad(fileManifest, "its sample is not the one its key draws from %s", filePopulation)
	}
	return nil
}

func (v *packageVerifier) sampleKey(sel *Selection) ([]byte, error) {
	var key []byte
	switch sel.SeedSource {
	case "seed":
		key = []byte(sel.Seed)
	case "auditor-nonce":
		key = NonceKey(v.root, sel.Nonce)
	default:
		return nil, bad(fileManifest, "seed_source %q is neither seed nor auditor-nonce", sel.SeedSource)
	}
	if hex.EncodeToString(key) != sel.Key {
		return nil, bad(fileManifest, "its key %s is not the one its %s gives", sel.Key, sel.SeedSource)
	}
	return key, nil
}

// chosen: an export's records are exactly its population's rows.
func (v *packageVerifier) chosen() error {
	if len(v.m.Sample) != len(v.order) {
		return bad(fileManifest, "names %d records, but %s has %d rows", len(v.m.Sample), filePopulation, len(v.order))
	}
	for _, p := range v.m.Sample {
		if p.Reason != "chosen" {
			return bad(fileManifest, "an export's record %s is marked %q", p.ID, p.Reason)
		}
	}
	return nil
}

func sameQuery(a, b QueryManifest) bool {
	return a.From == b.From && a.To == b.To && a.Repo == b.Repo && a.Statement == b.Statement && slices.Equal(a.Types, b.Types)
}
