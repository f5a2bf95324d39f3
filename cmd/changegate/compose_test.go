package main

import (
	"fmt"
	"go/build"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/changegate/changegate/internal/testenv"
)

// composeFile is what the tests read of deploy/compose.yaml.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Configs map[string]struct {
		Content string `yaml:"content"`
	} `yaml:"configs"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Profiles    []string          `yaml:"profiles"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Ports       []string          `yaml:"ports"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	return cf
}

// composeVar is compose's interpolation: ${NAME}, ${NAME:-default},
// ${NAME:?error}, and $$ for a dollar.
var composeVar = regexp.MustCompile(`\$\$|\$\{([A-Za-z0-9_]+)(?::([-?])([^}]*))?\}`)

// interpolate substitutes dotenv into s as compose does.
func interpolate(s string, dotenv map[string]string) (string, error) {
	var err error
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		g := composeVar.FindStringSubmatch(m)
		v, ok := dotenv[g[1]]
		switch {
		case ok && v != "":
			return v
		case g[2] == "?":
			err = fmt.Errorf("%s: %s", g[1], g[3])
		}
		return g[3]
	})
	return out, err
}

// TestComposeProfiles: each profile runs one changegate on port 8080, so
// the embedded store and the scale-out one never answer the App at once.
func TestComposeProfiles(t *testing.T) {
	t.Parallel()
	cf := readCompose(t)
	published := map[string][]string{}
	for name, s := range cf.Services {
		if len(s.Profiles) != 1 || (s.Profiles[0] != "embedded" && s.Profiles[0] != "scale-out") {
			t.Errorf("service %s: profiles %v, want one of embedded, scale-out", name, s.Profiles)
			continue
		}
		if slices.Contains(s.Ports, "8080:8080") {
			published[s.Profiles[0]] = append(published[s.Profiles[0]], name)
		}
		for _, sec := range s.Secrets {
			if _, ok := cf.Secrets[sec]; !ok {
				t.Errorf("service %s uses secret %s, which the file does not define", name, sec)
			}
		}
	}
	if fmt.Sprint(published) != "map[embedded:[changegate] scale-out:[lb]]" {
		t.Errorf("port 8080 is published by %v, want the embedded changegate and the scale-out load balancer", published)
	}
	if r := cf.Services["replica"].Deploy.Replicas; r < 2 {
		t.Errorf("the scale-out profile runs %d replicas", r)
	}
	if conf := cf.Configs["nginx.conf"].Content; !strings.Contains(conf, "replica:8080") || !strings.Contains(conf, "non_idempotent") {
		t.Errorf("the load balancer does not spread over the replicas, retrying a refused delivery on the next:\n%s", conf)
	}
	if _, err := interpolate(cf.Services["replica"].Environment["CHANGEGATE_DATABASE_URL"], nil); err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
		t.Errorf("the database URL without POSTGRES_PASSWORD: %v, want compose to refuse naming it", err)
	}
}

// TestComposeScaleOut runs the compose file's scale-out profile as compose
// would, without a container engine: versitygw with the s3 service's
// command line, the evidence-bucket service's command, and two replicas
// of the real binary with the replica service's environment, its secrets
// and its service names pointed at this machine. A pull request gets its
// check through one replica, its merge is archived through the other, and
// the ledger verifies from PostgreSQL and S3.
func TestComposeScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	t.Parallel()
	dbURL := testenv.PostgresDatabase(t)
	vgw := lookVersitygw(t)
	cf := readCompose(t)
	gh, jf := newFakes(t, "Approved")
	dir := t.TempDir()
	dotenv := map[string]string{
		"CHANGEGATE_WEBHOOK_SECRET": ghSecret, "CHANGEGATE_GITHUB_APP_ID": itoa(gh.AppID()),
		"POSTGRES_PASSWORD": "compose-pg-password", "S3_SECRET": "compose-s3-secret",
		"CHANGEGATE_JIRA_URL": jf.URL(), "CHANGEGATE_JIRA_USER": jf.User(), "CHANGEGATE_JIRA_TOKEN": jf.Token(),
	}
	s3Addr := startComposeS3(t, vgw, cf.Services["s3"], dotenv)
	bin := buildBinary(t, dir)
	secrets := composeSecrets(t, bin, dir, gh.PrivateKeyPEM())
	hosts := composeHosts{t: t, cf: cf, dotenv: dotenv, dbURL: dbURL, s3: s3Addr, secrets: secrets}

	initEnv := hosts.env("evidence-bucket")
	for i, want := range []string{"created bucket changegate-evidence with Object Lock", "exists with Object Lock: left as it is"} {
		out, err := runBinary(bin, initEnv, cf.Services["evidence-bucket"].Command...)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("evidence-bucket, run %d: %v: %s", i+1, err, out)
		}
	}
	env := hosts.env("replica")
	var replicas []*binServer
	for r := range 2 {
		replicas = append(replicas, startBinary(t, bin, filepath.Join(dir, fmt.Sprintf("data-%d", r)), []byte(ghSecret),
			append(env, "CHANGEGATE_GITHUB_API_URL="+gh.URL())...))
	}
	for _, r := range replicas {
		out, err := runBinary(bin, nil, "healthcheck", "--url", r.base+"/readyz")
		if err != nil || !strings.Contains(out, `"evidence":"ok"`) {
			t.Errorf("healthcheck of %s: %v: %s", r.base, err, out)
		}
	}
	composeChange(t, &app{gh: gh, jf: jf, base: replicas[0].base, client: &http.Client{Timeout: 10 * time.Second}}, replicas[1].base)
	pub := filepath.Join(dir, "changegate.pub")
	out, err := runBinary(bin, nil, "audit", "pubkey", "--key", secrets["signing-key.pem"])
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pub, []byte(out), 0o600)
	var evidenceURL string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "CHANGEGATE_EVIDENCE_URL="); ok {
			evidenceURL = v
		}
	}
	eventually(t, "the ledger verifies with the merge", 30*time.Second, func() bool {
		out, err = runBinary(bin, env, "audit", "verify", "--database-url", dbURL, "--evidence-url", evidenceURL, "--pubkey", pub)
		return err == nil && strings.HasPrefix(out, "ok: 1 records")
	})
}

// composeChange takes a compliant pull request through the first
// replica and its merge through the other.
func composeChange(t *testing.T, a *app, other string) {
	head, merge := strings.Repeat("c", 40), fmt.Sprintf("%040d", 71)
	a.compliantPR(71, head)
	pr := func(action, sha string) string {
		return strings.ReplaceAll(strings.ReplaceAll(prEvent(action, 51), sha1, sha), `"number":51`, `"number":71`)
	}
	a.github(t, "pull_request", pr("opened", head))
	eventually(t, "the check passes", 30*time.Second, func() bool {
		c, _ := a.gh.LatestCheckRun("acme", "api", head, "changegate")
		return c.Conclusion == "success"
	})
	a.gh.MergePullRequest("acme", "api", 71, merge, "alice")
	a.base = other
	a.github(t, "pull_request", pr("closed", merge))
}

// composeHosts points a service's environment at this machine: the
// postgres and s3 service names at the test's servers, /run/secrets at
// files, after checking that what the replica is given matches what the
// postgres and s3 services are configured with.
type composeHosts struct {
	t       *testing.T
	cf      composeFile
	dotenv  map[string]string
	dbURL   string
	s3      string
	secrets map[string]string
}

func (h composeHosts) env(service string) []string {
	t, s := h.t, h.cf.Services[service]
	var env []string
	for k, raw := range s.Environment {
		v, err := interpolate(raw, h.dotenv)
		if err != nil {
			t.Fatalf("%s: %s: %v", service, k, err)
		}
		switch {
		case k == "CHANGEGATE_DATABASE_URL":
			v = h.database(service, v)
		case k == "CHANGEGATE_EVIDENCE_URL":
			v = strings.ReplaceAll(v, "http://s3:7070", "http://"+h.s3)
		case strings.HasPrefix(v, "/run/secrets/"):
			name := strings.TrimPrefix(v, "/run/secrets/")
			if !slices.Contains(s.Secrets, name) {
				t.Fatalf("%s: %s names secret %s, which the service does not mount", service, k, name)
			}
			v = h.secrets[name]
		}
		env = append(env, k+"="+v)
	}
	h.checkS3Credentials(service, s.Environment)
	return env
}

// database checks the URL against the postgres service, and returns the
// test's database.
func (h composeHosts) database(service, v string) string {
	u, err := url.Parse(v)
	if err != nil {
		h.t.Fatalf("%s: CHANGEGATE_DATABASE_URL: %v", service, err)
	}
	pg := h.cf.Services["postgres"].Environment
	pw, _ := u.User.Password()
	wantPW, _ := interpolate(pg["POSTGRES_PASSWORD"], h.dotenv)
	if u.Host != "postgres:5432" || u.User.Username() != pg["POSTGRES_USER"] || pw != wantPW || u.Path != "/"+pg["POSTGRES_DB"] {
		h.t.Fatalf("%s: CHANGEGATE_DATABASE_URL %s does not name the postgres service's database, user and password", service, u.Redacted())
	}
	return h.dbURL
}

// checkS3Credentials checks the AWS credentials against the s3 service's.
func (h composeHosts) checkS3Credentials(service string, env map[string]string) {
	if env["CHANGEGATE_EVIDENCE_URL"] == "" {
		return
	}
	cmd := h.cf.Services["s3"].Command
	arg := func(flag string) string {
		i := slices.Index(cmd, flag)
		if i < 0 || i+1 >= len(cmd) {
			h.t.Fatalf("the s3 service's command has no %s", flag)
		}
		v, _ := interpolate(cmd[i+1], h.dotenv)
		return v
	}
	key, _ := interpolate(env["AWS_ACCESS_KEY_ID"], h.dotenv)
	secret, _ := interpolate(env["AWS_SECRET_ACCESS_KEY"], h.dotenv)
	if key != arg("--access") || secret != arg("--secret") || env["AWS_REGION"] == "" {
		h.t.Fatalf("%s: the AWS credentials and region do not match the s3 service's", service)
	}
}

// startComposeS3 runs versitygw with the s3 service's command line, its
// port and volumes on this machine, and returns its address.
func startComposeS3(t *testing.T, vgw string, s composeService, dotenv map[string]string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	root := t.TempDir()
	var args []string
	for _, a := range s.Command {
		v, err := interpolate(a, dotenv)
		if err != nil {
			t.Fatalf("s3 command: %v", err)
		}
		switch v {
		case ":7070":
			v = addr
		case "/versions", "/buckets":
			v = filepath.Join(root, v)
			os.MkdirAll(v, 0o700)
		}
		args = append(args, v)
	}
	cmd := exec.Command(vgw, args...)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("versitygw:\n%s", log.String())
		}
	})
	eventually(t, "versitygw answers", 20*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// composeSecrets writes ./secrets as the compose file's comment says:
// the App's key, and the ledger's key from evidence keygen.
func composeSecrets(t *testing.T, bin, dir string, appKey []byte) map[string]string {
	t.Helper()
	secrets := map[string]string{"app.pem": filepath.Join(dir, "app.pem"), "signing-key.pem": filepath.Join(dir, "signing-key.pem")}
	if err := os.WriteFile(secrets["app.pem"], appKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runBinary(bin, nil, "evidence", "keygen", "--out", secrets["signing-key.pem"]); err != nil {
		t.Fatalf("evidence keygen: %v: %s", err, out)
	}
	return secrets
}

// runBinary runs the binary with env added to this process's, and returns
// its output.
func runBinary(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lookVersitygw finds the versitygw binary .ci/run installs, or skips.
func lookVersitygw(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	for _, gopath := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(gopath, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0; .ci/run does)")
	return ""
}
