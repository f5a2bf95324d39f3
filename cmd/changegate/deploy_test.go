package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestKustomize renders deploy/kubernetes with kubectl and checks what an
// operator relies on: the probes, a locked-down securityContext, and no
// secret value in the manifests. It needs kubectl (CHANGEGATE_TEST_KUBECTL
// or on PATH), which .ci/run installs.
func TestKustomize(t *testing.T) {
	t.Parallel()
	kubectl := os.Getenv("CHANGEGATE_TEST_KUBECTL")
	if kubectl == "" {
		var err error
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			t.Skip("kubectl not found: set CHANGEGATE_TEST_KUBECTL or install kubectl to render deploy/kubernetes")
		}
	}
	t.Run("one replica", func(t *testing.T) {
		kinds := kustomize(t, kubectl, "../../deploy/kubernetes")
		for _, k := range []string{"StatefulSet", "Service", "ServiceMonitor", "NetworkPolicy"} {
			if kinds[k] == nil {
				t.Errorf("no %s rendered", k)
			}
		}
		checkPod(t, dig(kinds["StatefulSet"], "spec", "template", "spec").(map[string]any))
	})
	// The scale-out overlay: three replicas of a Deployment, a disruption
	// budget, the database URL and S3 credentials from the Secret.
	t.Run("scale-out", func(t *testing.T) {
		kinds := kustomize(t, kubectl, "../../deploy/kubernetes/scale-out")
		if kinds["StatefulSet"] != nil {
			t.Error("the overlay still renders the embedded store's StatefulSet")
		}
		if r := dig(kinds["Deployment"], "spec", "replicas"); r != 3 {
			t.Errorf("replicas %v, want 3", r)
		}
		if m := dig(kinds["PodDisruptionBudget"], "spec", "minAvailable"); m != 2 {
			t.Errorf("PodDisruptionBudget minAvailable %v, want 2", m)
		}
		pod := dig(kinds["Deployment"], "spec", "template", "spec").(map[string]any)
		checkPod(t, pod)
		fromSecret := map[string]bool{}
		for _, e := range pod["containers"].([]any)[0].(map[string]any)["env"].([]any) {
			env := e.(map[string]any)
			if dig(env, "valueFrom", "secretKeyRef", "name") == "changegate" {
				fromSecret[env["name"].(string)] = true
			}
		}
		for _, name := range []string{"CHANGEGATE_DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "CHANGEGATE_WEBHOOK_SECRET"} {
			if !fromSecret[name] {
				t.Errorf("%s does not come from the Secret", name)
			}
		}
	})
}

// kustomize renders dir and returns its documents by kind.
func kustomize(t *testing.T, kubectl, dir string) map[string]map[string]any {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), kubectl, "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	kinds := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		kinds[doc["kind"].(string)] = doc
	}
	if kinds["Secret"] != nil {
		t.Error("a Secret is inlined; it must be referenced")
	}
	return kinds
}

// checkPod checks a pod template's probes, securityContext and that no
// secret has a literal value.
func checkPod(t *testing.T, pod map[string]any) {
	t.Helper()
	c := pod["containers"].([]any)[0].(map[string]any)
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := dig(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %v, want %s", probe, got, path)
		}
	}
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false ||
		dig(pod, "securityContext", "runAsNonRoot") != true || !strings.Contains(strings.Join(strs(dig(sc, "capabilities", "drop")), ","), "ALL") {
		t.Errorf("securityContext: pod %v, container %v", pod["securityContext"], sc)
	}
	for _, e := range c["env"].([]any) {
		env := e.(map[string]any)
		name := env["name"].(string)
		// A *_FILE variable holds a path to a mounted Secret, not the secret.
		secretish := (strings.Contains(name, "SECRET") || strings.Contains(name, "TOKEN") || strings.Contains(name, "KEY") ||
			strings.Contains(name, "DATABASE_URL")) && !strings.HasSuffix(name, "_FILE")
		if secretish && env["value"] != nil {
			t.Errorf("%s has a literal value; it must come from a Secret", name)
		}
	}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestDockerfilePinsItsBases: every FROM names its base by digest, with
// the tag in the comment above it.
func TestDockerfilePinsItsBases(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	pinned := regexp.MustCompile(`^FROM (\S+)@sha256:[0-9a-f]{64}( AS \w+)?$`)
	froms := 0
	for i, line := range lines {
		if !strings.HasPrefix(line, "FROM ") {
			continue
		}
		froms++
		m := pinned.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d is not pinned by digest: %s", i+1, line)
			continue
		}
		if i == 0 || lines[i-1] != "# "+m[1] {
			t.Errorf("line %d: the comment above should name the tag %q", i+1, m[1])
		}
	}
	if froms == 0 {
		t.Error("no FROM in the Dockerfile")
	}
}
