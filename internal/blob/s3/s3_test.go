package s3

// The tests against a server need a real S3 implementation with Object Lock.
// .ci/run starts versitygw and sets
//
//	CHANGEGATE_TEST_S3_URL=http://ACCESS:SECRET@127.0.0.1:PORT
//
// that is, the server's endpoint with the access key and secret as user and
// password (URL-escaped), optionally with ?region=REGION (default us-east-1).
// To run them by hand:
//
//	versitygw --access test --secret testsecret --port 127.0.0.1:7070 posix --versioning-dir /tmp/vgw-versions /tmp/vgw-root
//	CHANGEGATE_TEST_S3_URL=http://test:testsecret@127.0.0.1:7070 go test ./internal/blob/s3
//
// Without it they skip. Each test creates its own bucket. Objects are locked
// for an hour, so buckets stay behind until the server's directories go.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/blob/blobtest"
)

const testS3Env = "CHANGEGATE_TEST_S3_URL"

type server struct {
	endpoint string
	region   string
	creds    aws.CredentialsProvider
	admin    *awss3.Client // for what the store does not do: buckets, versions
}

func testServer(t *testing.T) *server {
	t.Helper()
	raw := os.Getenv(testS3Env)
	if raw == "" {
		t.Skipf("%s is not set: no S3 server with Object Lock to test against (.ci/run starts versitygw; format http://ACCESS:SECRET@HOST:PORT)", testS3Env)
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || u.Host == "" {
		t.Fatalf("%s: want http://ACCESS:SECRET@HOST:PORT[?region=R], got an unparseable value or one without credentials", testS3Env)
	}
	secret, _ := u.User.Password()
	s := &server{
		endpoint: u.Scheme + "://" + u.Host,
		region:   u.Query().Get("region"),
		creds:    credentials.NewStaticCredentialsProvider(u.User.Username(), secret, ""),
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	s.admin, err = newClient(t.Context(), Config{Region: s.region, Endpoint: s.endpoint, PathStyle: true}, Options{Credentials: s.creds})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bucket creates a bucket with a fresh name.
func (s *server) bucket(t *testing.T, objectLock bool) string {
	t.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	name := "cgt-" + hex.EncodeToString(b)
	_, err := s.admin.CreateBucket(t.Context(), &awss3.CreateBucketInput{
		Bucket:                     &name,
		ObjectLockEnabledForBucket: aws.Bool(objectLock),
	})
	if err != nil {
		t.Fatalf("create bucket %s (object lock %v): %v", name, objectLock, err)
	}
	return name
}

func (s *server) url(bucket, path, query string) string {
	q := url.Values{"endpoint": {s.endpoint}, "region": {s.region}, "path_style": {"true"}}
	extra, _ := url.ParseQuery(query)
	for k, v := range extra {
		q[k] = v
	}
	return "s3://" + bucket + path + "?" + q.Encode()
}

func (s *server) open(t *testing.T, rawURL string, o Options) *Store {
	t.Helper()
	o.Credentials = s.creds
	st, err := Open(t.Context(), rawURL, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st
}

func TestConformance(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return s.open(t, s.url(s.bucket(t, true), "/evidence", "retention=1h"), Options{})
	}, blobtest.Options{ListKeys: 1100}) // more than one page of 1000
}

func TestOpenRefusesBucketWithoutObjectLock(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	bucket := s.bucket(t, false)
	t.Cleanup(func() { s.admin.DeleteBucket(t.Context(), &awss3.DeleteBucketInput{Bucket: &bucket}) })
	_, err := Open(t.Context(), s.url(bucket, "", "retention=1h"), Options{Credentials: s.creds})
	if !errors.Is(err, ErrObjectLockDisabled) {
		t.Fatalf("Open on a bucket without Object Lock: %v, want ErrObjectLockDisabled", err)
	}
	t.Logf("refused: %v", err)
}

func TestOpenMissingBucket(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	_, err := Open(t.Context(), s.url("cgt-does-not-exist", "", "retention=1h"), Options{Credentials: s.creds})
	if err == nil || errors.Is(err, ErrObjectLockDisabled) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open on a missing bucket: %v, want an error saying it does not exist", err)
	}
}

// TestCreateBucket: the admin's create-bucket makes a bucket the store
// opens, leaves it alone when run again, and refuses one without Object
// Lock.
func TestCreateBucket(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	b := make([]byte, 8)
	rand.Read(b)
	raw := s.url("cgt-"+hex.EncodeToString(b), "/evidence", "retention=1h")
	for i, want := range []bool{true, false} {
		created, err := CreateBucket(t.Context(), raw, Options{Credentials: s.creds})
		if err != nil || created != want {
			t.Fatalf("run %d: created %v, %v; want %v", i+1, created, err, want)
		}
	}
	st := s.open(t, raw, Options{})
	if err := st.Put(t.Context(), "records/1", []byte("x")); err != nil {
		t.Fatalf("put into the created bucket: %v", err)
	}
	unlocked := s.bucket(t, false)
	t.Cleanup(func() { s.admin.DeleteBucket(t.Context(), &awss3.DeleteBucketInput{Bucket: &unlocked}) })
	if _, err := CreateBucket(t.Context(), s.url(unlocked, "", "retention=1h"), Options{Credentials: s.creds}); !errors.Is(err, ErrObjectLockDisabled) {
		t.Errorf("create-bucket on a bucket without Object Lock: %v, want ErrObjectLockDisabled", err)
	}
	if _, err := CreateBucket(t.Context(), "s3://x", Options{Credentials: s.creds}); err == nil {
		t.Error("a URL without retention was accepted")
	}
}

// putLocked puts one object through the store and returns its version.
func putLocked(t *testing.T, s *server, query string) (st *Store, key, fullKey, version string, data []byte, before, after time.Time) {
	t.Helper()
	bucket := s.bucket(t, true)
	st = s.open(t, s.url(bucket, "/ev", query), Options{})
	key, data = "records/000000000001-a.dsse.json", []byte(`{"payload":"original"}`)
	before = time.Now()
	if err := st.Put(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	after = time.Now()
	fullKey = "ev/" + key
	head, err := s.admin.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: &bucket, Key: &fullKey})
	if err != nil {
		t.Fatal(err)
	}
	version = aws.ToString(head.VersionId)
	if version == "" || version == "null" {
		t.Fatalf("object has version %q, want a real version (Object Lock implies versioning)", version)
	}
	return st, key, fullKey, version, data, before, after
}

func (s *server) getVersion(t *testing.T, bucket, key, version string) []byte {
	t.Helper()
	out, err := s.admin.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: &bucket, Key: &key, VersionId: &version})
	if err != nil {
		t.Fatalf("get version %s of %s: %v", version, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// (d) Each object carries the mode and retain-until date, and the checksum.
func TestRetentionSetOnObject(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	st, _, fullKey, version, data, before, after := putLocked(t, s, "retention=2d")
	bucket := st.cfg.Bucket

	ret, err := s.admin.GetObjectRetention(t.Context(), &awss3.GetObjectRetentionInput{Bucket: &bucket, Key: &fullKey, VersionId: &version})
	if err != nil {
		t.Fatal(err)
	}
	if ret.Retention == nil || ret.Retention.Mode != types.ObjectLockRetentionModeCompliance {
		t.Fatalf("retention = %+v, want mode COMPLIANCE", ret.Retention)
	}
	until := aws.ToTime(ret.Retention.RetainUntilDate)
	lo, hi := before.Add(48*time.Hour).Add(-time.Second), after.Add(48*time.Hour).Add(time.Second)
	if until.Before(lo) || until.After(hi) {
		t.Errorf("retain until %v, want between %v and %v (now + 2d)", until, lo, hi)
	}

	head, err := s.admin.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: &bucket, Key: &fullKey, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got, want := aws.ToString(head.ChecksumSHA256), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("stored SHA-256 checksum %q, want %q", got, want)
	}
	if head.ObjectLockMode != types.ObjectLockModeCompliance {
		t.Errorf("HEAD object lock mode %q, want COMPLIANCE", head.ObjectLockMode)
	}

	// COMPLIANCE retention cannot be shortened.
	_, err = s.admin.PutObjectRetention(t.Context(), &awss3.PutObjectRetentionInput{
		Bucket: &bucket, Key: &fullKey, VersionId: &version,
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(time.Now().Add(time.Hour))},
	})
	if err == nil {
		t.Error("shortening COMPLIANCE retention succeeded, want refused")
	} else {
		t.Logf("shortening retention refused: %v", err)
	}
}

// (b) The server refuses to delete a locked version, bypass header or not.
func TestDeleteLockedVersionRefused(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	st, key, fullKey, version, data, _, _ := putLocked(t, s, "retention=1h")
	bucket := st.cfg.Bucket

	for _, bypass := range []bool{false, true} {
		_, err := s.admin.DeleteObject(t.Context(), &awss3.DeleteObjectInput{
			Bucket: &bucket, Key: &fullKey, VersionId: &version, BypassGovernanceRetention: aws.Bool(bypass),
		})
		if err == nil {
			t.Fatalf("DeleteObject of the locked version (bypass governance %v) succeeded, want refused", bypass)
		}
		t.Logf("delete of locked version (bypass governance %v) refused: %v", bypass, err)
	}
	if got := s.getVersion(t, bucket, fullKey, version); !bytes.Equal(got, data) {
		t.Errorf("locked version holds %q, want %q", got, data)
	}
	got, err := st.Get(t.Context(), key)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get = %q, %v; want %q", got, err, data)
	}

	// A delete without a version only adds a delete marker: the key reads as
	// missing, but the locked version is still there, by its version id.
	if _, err := s.admin.DeleteObject(t.Context(), &awss3.DeleteObjectInput{Bucket: &bucket, Key: &fullKey}); err != nil {
		t.Logf("delete without version refused too: %v", err)
	} else if _, err := st.Get(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Get after a delete marker: %v, want ErrNotFound", err)
	}
	if got := s.getVersion(t, bucket, fullKey, version); !bytes.Equal(got, data) {
		t.Errorf("locked version after a delete marker holds %q, want %q", got, data)
	}
}

// (c) An overwrite never replaces the locked version.
func TestOverwriteKeepsLockedVersion(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	st, key, fullKey, version, data, _, _ := putLocked(t, s, "retention=1h")
	bucket := st.cfg.Bucket

	// Through the store: refused by If-None-Match, nothing written.
	if err := st.Put(t.Context(), key, []byte(`{"payload":"forged"}`)); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("store Put of other bytes: %v, want ErrExists", err)
	}
	if n := len(versions(t, s, bucket, fullKey)); n != 1 {
		t.Errorf("%d versions after a refused Put, want 1", n)
	}

	// Around the store: a plain PutObject with the same key.
	forged := []byte(`{"payload":"forged"}`)
	_, err := s.admin.PutObject(t.Context(), &awss3.PutObjectInput{Bucket: &bucket, Key: &fullKey, Body: bytes.NewReader(forged)})
	if err != nil {
		t.Logf("raw overwrite refused: %v", err)
	} else {
		// S3 semantics: the write becomes a newer version; the locked one
		// is untouched and still readable by its id.
		t.Logf("raw overwrite stored as a newer version; the locked version stays")
	}
	if got := s.getVersion(t, bucket, fullKey, version); !bytes.Equal(got, data) {
		t.Errorf("locked version after an overwrite holds %q, want %q", got, data)
	}
	vs := versions(t, s, bucket, fullKey)
	if !slices.Contains(vs, version) {
		t.Errorf("versions %q lack the locked version %s", vs, version)
	}
	if st.noConditional.Load() {
		t.Error("the server refused If-None-Match; puts fell back to HEAD first")
	}
}

func versions(t *testing.T, s *server, bucket, key string) []string {
	t.Helper()
	out, err := s.admin.ListObjectVersions(t.Context(), &awss3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &key})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == key {
			ids = append(ids, aws.ToString(v.VersionId))
		}
	}
	return ids
}

func TestGovernanceModeWarns(t *testing.T) {
	t.Parallel()
	s := testServer(t)
	var logs bytes.Buffer
	st := s.open(t, s.url(s.bucket(t, true), "", "retention=1h&mode=governance"), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "GOVERNANCE") {
		t.Errorf("no warning logged for GOVERNANCE mode; logs: %s", logs.String())
	}
	if err := st.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	ret, err := s.admin.GetObjectRetention(t.Context(), &awss3.GetObjectRetentionInput{Bucket: &st.cfg.Bucket, Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if ret.Retention.Mode != types.ObjectLockRetentionModeGovernance {
		t.Errorf("mode %q, want GOVERNANCE", ret.Retention.Mode)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    Config
		wantErr string
	}{
		{
			name: "full",
			raw:  "s3://evidence-bucket/changegate/prod?endpoint=http://127.0.0.1:7070&region=eu-west-1&retention=2555d&mode=COMPLIANCE&path_style=true",
			want: Config{Bucket: "evidence-bucket", Prefix: "changegate/prod/", Region: "eu-west-1", Endpoint: "http://127.0.0.1:7070",
				PathStyle: true, Mode: types.ObjectLockRetentionModeCompliance, Retention: 2555 * 24 * time.Hour},
		},
		{
			name: "defaults",
			raw:  "s3://evidence-bucket?retention=720h",
			want: Config{Bucket: "evidence-bucket", Mode: types.ObjectLockRetentionModeCompliance, Retention: 720 * time.Hour},
		},
		{
			name: "governance, trailing slash",
			raw:  "s3://evidence-bucket/p/?retention=1d&mode=governance",
			want: Config{Bucket: "evidence-bucket", Prefix: "p/", Mode: types.ObjectLockRetentionModeGovernance, Retention: 24 * time.Hour},
		},
		{name: "no retention", raw: "s3://evidence-bucket", wantErr: "retention is required"},
		{name: "zero retention", raw: "s3://evidence-bucket?retention=0d", wantErr: "must be positive"},
		{name: "negative retention", raw: "s3://evidence-bucket?retention=-5h", wantErr: "must be positive"},
		{name: "huge retention", raw: "s3://evidence-bucket?retention=99999999999d", wantErr: "at most 100 years"},
		{name: "bad retention", raw: "s3://evidence-bucket?retention=7y", wantErr: "want days"},
		{name: "bad mode", raw: "s3://evidence-bucket?retention=1d&mode=legal", wantErr: "not COMPLIANCE or GOVERNANCE"},
		{name: "unknown param", raw: "s3://evidence-bucket?retention=1d&retension=2d", wantErr: `unknown parameter "retension"`},
		{name: "repeated param", raw: "s3://evidence-bucket?retention=1d&retention=2d", wantErr: "given 2 times"},
		{name: "wrong scheme", raw: "https://evidence-bucket?retention=1d", wantErr: "scheme must be s3"},
		{name: "credentials", raw: "s3://k:s@evidence-bucket?retention=1d", wantErr: "must not carry credentials"},
		{name: "bad bucket", raw: "s3://Evidence_Bucket?retention=1d", wantErr: "not a valid bucket name"},
		{name: "bad prefix", raw: "s3://evidence-bucket/a/../b?retention=1d", wantErr: "invalid key"},
		{name: "bad endpoint", raw: "s3://evidence-bucket?retention=1d&endpoint=127.0.0.1:7070", wantErr: "not an absolute http(s) URL"},
		{name: "bad path_style", raw: "s3://evidence-bucket?retention=1d&path_style=maybe", wantErr: "not a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseURL(tc.raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseURL(%q) error %v, want one containing %q", tc.raw, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "k:s@") {
					t.Errorf("error leaks credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.raw, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseURL(%q) (-want +got):\n%s", tc.raw, diff)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("s3://evidence-bucket/p?retention=2555d&mode=COMPLIANCE")
	f.Add("s3://b/../x?retention=1h")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseURL(raw)
		if err != nil {
			return
		}
		if c.Retention <= 0 || c.Retention > maxRetention || !validBucket(c.Bucket) {
			t.Fatalf("ParseURL(%q) accepted %+v", raw, c)
		}
		if c.Prefix != "" && blob.ValidKey(strings.TrimSuffix(c.Prefix, "/")) != nil {
			t.Fatalf("ParseURL(%q) accepted prefix %q", raw, c.Prefix)
		}
	})
}

// A server that does not implement If-None-Match (501) gets HEAD-first puts
// from then on, with the same outcomes.
func TestPutWithoutConditionalWrites(t *testing.T) {
	t.Parallel()
	var (
		mu          sync.Mutex
		objects     = map[string][]byte{}
		conditional int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fail := func(status int, code string) {
			w.WriteHeader(status)
			fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", code, code)
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Query().Has("object-lock"):
			io.WriteString(w, "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>")
		case r.Method == http.MethodPut && r.Header.Get("If-None-Match") != "":
			conditional++
			fail(http.StatusNotImplemented, "NotImplemented")
		case r.Method == http.MethodPut:
			if r.Header.Get("X-Amz-Object-Lock-Mode") != "COMPLIANCE" || r.Header.Get("X-Amz-Object-Lock-Retain-Until-Date") == "" {
				fail(http.StatusBadRequest, "MissingLock")
				return
			}
			objects[r.URL.Path], _ = io.ReadAll(r.Body)
		case r.Method == http.MethodGet:
			b, ok := objects[r.URL.Path]
			if !ok {
				fail(http.StatusNotFound, "NoSuchKey")
				return
			}
			w.Write(b)
		default:
			fail(http.StatusMethodNotAllowed, "MethodNotAllowed")
		}
	}))
	t.Cleanup(srv.Close)

	q := url.Values{"endpoint": {srv.URL}, "region": {"us-east-1"}, "path_style": {"true"}, "retention": {"1d"}}
	st, err := Open(t.Context(), "s3://fake-bucket?"+q.Encode(), Options{Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := st.Put(ctx, "a", []byte("one")); err != nil {
		t.Fatalf("first Put: %v", err)
	}
	if err := st.Put(ctx, "a", []byte("one")); err != nil {
		t.Errorf("same bytes again: %v, want nil", err)
	}
	if err := st.Put(ctx, "a", []byte("two")); !errors.Is(err, blob.ErrExists) {
		t.Errorf("other bytes: %v, want ErrExists", err)
	}
	if got, err := st.Get(ctx, "a"); err != nil || string(got) != "one" {
		t.Errorf("Get = %q, %v; want one", got, err)
	}
	if err := st.Put(ctx, "b", []byte("three")); err != nil {
		t.Errorf("second key: %v", err)
	}
	if conditional != 1 {
		t.Errorf("%d conditional puts, want 1 (then HEAD first)", conditional)
	}
}
