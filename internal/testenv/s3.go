package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Env names the S3 server with Object Lock tests use, as
// http://ACCESS:SECRET@HOST:PORT. .ci/run starts versitygw and sets it.
const S3Env = "CHANGEGATE_TEST_S3_URL"

var s3Creds sync.Once

// S3Evidence creates a bucket with Object Lock on the server S3Env names
// and returns its s3:// evidence URL for a server under test. The server's
// credentials come from the standard AWS environment, which this sets for
// the process once (every test shares the one server's). Without the
// variable the test is skipped, saying so.
func S3Evidence(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(S3Env)
	if raw == "" {
		t.Skipf("set %s=http://ACCESS:SECRET@127.0.0.1:PORT to run the S3 tests (.ci/run starts versitygw)", S3Env)
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || u.Host == "" {
		t.Fatalf("%s: want http://ACCESS:SECRET@HOST:PORT", S3Env)
	}
	secret, _ := u.User.Password()
	s3Creds.Do(func() {
		os.Setenv("AWS_ACCESS_KEY_ID", u.User.Username())
		os.Setenv("AWS_SECRET_ACCESS_KEY", secret)
		os.Setenv("AWS_REGION", "us-east-1")
	})
	endpoint := u.Scheme + "://" + u.Host
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(u.User.Username(), secret, "")))
	if err != nil {
		t.Fatal(err)
	}
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
	b := make([]byte, 8)
	rand.Read(b)
	bucket := "cge-" + hex.EncodeToString(b)
	if _, err := client.CreateBucket(t.Context(), &awss3.CreateBucketInput{Bucket: &bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	q := url.Values{"endpoint": {endpoint}, "region": {"us-east-1"}, "path_style": {"true"}, "retention": {"1d"}, "mode": {"GOVERNANCE"}}
	return "s3://" + bucket + "/evidence?" + q.Encode()
}
