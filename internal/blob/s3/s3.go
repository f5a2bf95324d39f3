// Package s3 is the blob store on S3 with Object Lock: every object is
// written once, with a retention period in COMPLIANCE mode that nobody, the
// account root included, can shorten or delete.
//
// The store is configured by one URL (CHANGEGATE_EVIDENCE_URL):
//
//	s3://BUCKET[/PREFIX]?retention=2555d[&mode=COMPLIANCE][&region=us-east-1][&endpoint=http://127.0.0.1:7070][&path_style=true]
//
// Its parameters:
//   - retention (required): how long each object is locked, as days ("2555d",
//     seven years) or a Go duration ("720h"). COMPLIANCE retention cannot be
//     shortened, so there is no default.
//   - mode: COMPLIANCE (default) or GOVERNANCE. GOVERNANCE can be bypassed by
//     anyone holding s3:BypassGovernanceRetention, and is logged as weaker.
//   - region: else from the AWS configuration (AWS_REGION, ~/.aws/config).
//   - endpoint: an S3-compatible server instead of AWS.
//   - path_style: address the bucket in the path rather than the host name,
//     as most S3-compatible servers need.
//
// Credentials come from the standard AWS chain (environment, shared files,
// web identity, instance role), unless Options.Credentials is set.
//
// Open refuses a bucket without Object Lock enabled. The bucket must be
// created with it (x-amz-bucket-object-lock-enabled: true, which also turns
// versioning on); the store does not change bucket settings.
package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/changegate/changegate/internal/blob"
)

// ErrObjectLockDisabled: the bucket does not have Object Lock enabled, so
// its objects could be deleted or replaced.
var ErrObjectLockDisabled = errors.New("s3: bucket does not have Object Lock enabled")

// maxRetention guards against a typo locking objects for centuries.
const maxRetention = 100 * 365 * 24 * time.Hour

// Config is the parsed store URL.
type Config struct {
	Bucket    string
	Prefix    string // "" or ending in "/"
	Region    string // "" means from the AWS configuration
	Endpoint  string // "" means AWS
	PathStyle bool
	Mode      types.ObjectLockRetentionMode
	Retention time.Duration
}

// ParseURL parses and validates a store URL (see the package comment).
func ParseURL(raw string) (Config, error) {
	var c Config
	u, err := url.Parse(raw)
	if err != nil {
		return c, fmt.Errorf("s3 url: %w", err)
	}
	switch {
	case u.Scheme != "s3":
		return c, fmt.Errorf("s3 url %q: scheme must be s3", u.Redacted())
	case u.User != nil:
		return c, errors.New("s3 url: must not carry credentials; use the AWS environment or config")
	case u.Host == "":
		return c, fmt.Errorf("s3 url %q: no bucket", u.Redacted())
	case u.Fragment != "":
		return c, fmt.Errorf("s3 url %q: unexpected fragment", u.Redacted())
	}
	c.Bucket = u.Host
	if !validBucket(c.Bucket) {
		return c, fmt.Errorf("s3 url: bucket %q is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')", c.Bucket)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if err := blob.ValidKey(p); err != nil {
			return c, fmt.Errorf("s3 url: prefix: %w", err)
		}
		c.Prefix = p + "/"
	}

	q := u.Query()
	for k, v := range q {
		if len(v) != 1 {
			return c, fmt.Errorf("s3 url: parameter %s given %d times", k, len(v))
		}
	}
	var problems []string
	for k := range q {
		switch k {
		case "retention", "mode", "region", "endpoint", "path_style":
		default:
			problems = append(problems, fmt.Sprintf("unknown parameter %q", k))
		}
	}
	c.Region = q.Get("region")
	if e := q.Get("endpoint"); e != "" {
		eu, err := url.Parse(e)
		if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" || eu.User != nil {
			problems = append(problems, fmt.Sprintf("endpoint %q is not an absolute http(s) URL without credentials", e))
		}
		c.Endpoint = e
	}
	if ps := q.Get("path_style"); ps != "" {
		b, err := strconv.ParseBool(ps)
		if err != nil {
			problems = append(problems, fmt.Sprintf("path_style %q is not a boolean", ps))
		}
		c.PathStyle = b
	}
	switch m := strings.ToUpper(q.Get("mode")); m {
	case "", string(types.ObjectLockRetentionModeCompliance):
		c.Mode = types.ObjectLockRetentionModeCompliance
	case string(types.ObjectLockRetentionModeGovernance):
		c.Mode = types.ObjectLockRetentionModeGovernance
	default:
		problems = append(problems, fmt.Sprintf("mode %q is not COMPLIANCE or GOVERNANCE", q.Get("mode")))
	}
	if r := q.Get("retention"); r == "" {
		problems = append(problems, `retention is required, for example retention=2555d (7 years)`)
	} else if c.Retention, err = parseRetention(r); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("s3 url %q: %s", u.Redacted(), strings.Join(problems, "; "))
	}
	return c, nil
}

// parseRetention reads "Nd" (days) or a Go duration.
func parseRetention(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("retention %q: want days (2555d) or a duration (720h)", s)
		}
		d = time.Duration(days) * 24 * time.Hour
		if days > int(maxRetention/(24*time.Hour)) {
			d = maxRetention + 1
		}
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("retention %q: want days (2555d) or a duration (720h)", s)
		}
	}
	if d <= 0 || d > maxRetention {
		return 0, fmt.Errorf("retention %q: must be positive and at most 100 years", s)
	}
	return d, nil
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Options are the collaborators of a Store.
type Options struct {
	// Credentials replace the default AWS credential chain when set (tests,
	// or a caller holding its own keys).
	Credentials aws.CredentialsProvider
	Logger      *slog.Logger
	// Now gives the clock for retain-until dates; time.Now if nil.
	Now func() time.Time
}

// Store is a blob.Store in one bucket. It is safe for concurrent use.
type Store struct {
	client *awss3.Client
	cfg    Config
	now    func() time.Time
	// noConditional is set once the server answers that it does not
	// implement If-None-Match; puts then HEAD first.
	noConditional atomic.Bool
}

var _ blob.Store = (*Store)(nil)

// Open parses rawURL, builds the client and checks that the bucket has
// Object Lock enabled, returning ErrObjectLockDisabled if not.
func Open(ctx context.Context, rawURL string, o Options) (*Store, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	client, err := newClient(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	if err := checkObjectLock(ctx, client, cfg.Bucket); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Mode == types.ObjectLockRetentionModeGovernance {
		log.Warn("s3 evidence store uses Object Lock GOVERNANCE mode: a principal with s3:BypassGovernanceRetention can delete or shorten the lock; use COMPLIANCE for audit evidence",
			"bucket", cfg.Bucket)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Store{client: client, cfg: cfg, now: now}, nil
}

// checkObjectLock checks that bucket exists with Object Lock enabled.
func checkObjectLock(ctx context.Context, client *awss3.Client, bucket string) error {
	out, err := client.GetObjectLockConfiguration(ctx, &awss3.GetObjectLockConfigurationInput{Bucket: &bucket})
	switch {
	case apiCode(err) == "NoSuchBucket":
		return fmt.Errorf("open s3 bucket %s: it does not exist; create it with Object Lock enabled (changegate evidence create-bucket)", bucket)
	case apiCode(err) == "ObjectLockConfigurationNotFoundError":
		return fmt.Errorf("open s3 bucket %s: %w; create a bucket with Object Lock enabled (it cannot be turned on for evidence already written)", bucket, ErrObjectLockDisabled)
	case err != nil:
		return fmt.Errorf("open s3 bucket %s: get object lock configuration: %w", bucket, err)
	case out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled:
		return fmt.Errorf("open s3 bucket %s: %w", bucket, ErrObjectLockDisabled)
	}
	return nil
}

// CreateBucket creates the bucket the store URL names, with Object Lock
// enabled (and so versioning), as the store requires; the retention is
// the store's, set on each object. A bucket that exists already is left
// as it is, and reported not created, provided it has Object Lock on;
// one without it is refused, as Object Lock cannot be turned on for
// evidence already written.
func CreateBucket(ctx context.Context, rawURL string, o Options) (created bool, err error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return false, err
	}
	client, err := newClient(ctx, cfg, o)
	if err != nil {
		return false, err
	}
	in := &awss3.CreateBucketInput{Bucket: &cfg.Bucket, ObjectLockEnabledForBucket: aws.Bool(true)}
	if r := client.Options().Region; r != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
	}
	_, err = client.CreateBucket(ctx, in)
	switch code := apiCode(err); {
	case err == nil:
		return true, nil
	case code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists":
		return false, checkObjectLock(ctx, client, cfg.Bucket)
	default:
		return false, fmt.Errorf("create s3 bucket %s: %w", cfg.Bucket, err)
	}
}

// newClient builds an S3 client for cfg without touching the bucket.
func newClient(ctx context.Context, cfg Config, o Options) (*awss3.Client, error) {
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if o.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(o.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load aws config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("s3: no region: set region= in the URL or AWS_REGION")
	}
	return awss3.NewFromConfig(awsCfg, func(so *awss3.Options) {
		if cfg.Endpoint != "" {
			so.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		so.UsePathStyle = cfg.PathStyle
	}), nil
}

// Put writes data under key with a retain-until date of now + retention and
// a SHA-256 checksum the server verifies. If-None-Match: * makes the server
// refuse an existing key, so a locked object never gets a newer version
// through the store.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	if s.noConditional.Load() {
		// No conditional writes: HEAD first. Two writers racing on one key
		// could then both write; the first version stays locked either way.
		if err := s.sameContent(ctx, key, data); !errors.Is(err, blob.ErrNotFound) {
			return err
		}
	}
	sum := sha256.Sum256(data)
	in := &awss3.PutObjectInput{
		Bucket:                    &s.cfg.Bucket,
		Key:                       aws.String(s.cfg.Prefix + key),
		Body:                      bytes.NewReader(data),
		ContentLength:             aws.Int64(int64(len(data))),
		ContentType:               aws.String("application/octet-stream"),
		ChecksumAlgorithm:         types.ChecksumAlgorithmSha256,
		ChecksumSHA256:            aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ObjectLockMode:            types.ObjectLockMode(s.cfg.Mode),
		ObjectLockRetainUntilDate: aws.Time(s.now().Add(s.cfg.Retention).UTC()),
	}
	if !s.noConditional.Load() {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := s.client.PutObject(ctx, in)
	switch {
	case err == nil:
		return nil
	case httpStatus(err) == 412 || apiCode(err) == "PreconditionFailed",
		// AWS: a conditional write raced with another one on the same key.
		httpStatus(err) == 409 && apiCode(err) == "ConditionalRequestConflict":
		if err := s.sameContent(ctx, key, data); !errors.Is(err, blob.ErrNotFound) {
			return err
		}
		return fmt.Errorf("put %s: refused as existing, but not readable yet (a concurrent write in progress?)", key)
	case in.IfNoneMatch != nil && httpStatus(err) == 501:
		s.noConditional.Store(true)
		return s.Put(ctx, key, data)
	default:
		return fmt.Errorf("put %s: %w", key, err)
	}
}

// sameContent is nil when key holds data, ErrExists when it holds other
// bytes, ErrNotFound when it does not exist.
func (s *Store) sameContent(ctx context.Context, key string, data []byte) error {
	got, err := s.Get(ctx, key)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return blob.ErrNotFound
	case err != nil:
		return fmt.Errorf("put %s: read existing: %w", key, err)
	case !bytes.Equal(got, data):
		return fmt.Errorf("put %s: %w", key, blob.ErrExists)
	}
	return nil
}

// Get returns the current version of key.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{
		Bucket:       &s.cfg.Bucket,
		Key:          aws.String(s.cfg.Prefix + key),
		ChecksumMode: types.ChecksumModeEnabled, // the SDK checks the stored checksum
	})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("get %s: %w", key, blob.ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("get %s: read body: %w", key, err)
	}
	return data, nil
}

// List calls fn for each key under prefix, in the ascending byte order S3
// lists in, one page of up to 1000 keys at a time.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := blob.ValidPrefix(prefix); err != nil {
		return err
	}
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket: &s.cfg.Bucket,
		Prefix: aws.String(s.cfg.Prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %q: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(obj.Key), s.cfg.Prefix)
			// Something other than the store wrote here: say so rather than
			// skip it, since the ledger relies on the listing.
			if err := blob.ValidKey(key); err != nil {
				return fmt.Errorf("list %q: object %q in bucket %s: %w", prefix, aws.ToString(obj.Key), s.cfg.Bucket, err)
			}
			if err := fn(key); err != nil {
				return err
			}
		}
	}
	return nil
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	return errors.As(err, &nsk) || errors.As(err, &nf)
}
