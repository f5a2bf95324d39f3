package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
)

func img(name, version, digest string) change.Artifact {
	return change.Artifact{Kind: change.ArtifactImage, Name: name, Version: version, Digest: digest}
}

func TestRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, yaml string
		values           []string
		want             []Ref
	}{
		{"kustomize images", "overlays/production/kustomization.yaml", `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
  - https://github.com/acme/platform//base?ref=v2.1.0
images:
  - name: registry.example/app
    newTag: v1.4.2
  - name: worker
    newName: registry.example/worker
    digest: sha256:abc
`, nil, []Ref{
			{Artifact: img("registry.example/app", "v1.4.2", ""), Where: "0:Kustomization/ images[registry.example/app]"},
			{Artifact: img("registry.example/worker", "", "sha256:abc"), Where: "0:Kustomization/ images[worker]"},
			{Artifact: change.Artifact{Kind: change.ArtifactSource, Name: "https://github.com/acme/platform//base", Version: "v2.1.0"},
				Where: "0:Kustomization/ resources[https://github.com/acme/platform//base]"},
		}},
		{"a kustomization.yaml without kind", "kustomization.yaml", "images:\n- name: app\n  newTag: \"2\"\n", nil,
			[]Ref{{Artifact: img("app", "2", ""), Where: "0:/ images[app]"}}},
		{"workloads in several documents, with an anchor", "deploy.yaml", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      initContainers: [{name: migrate, image: &img registry.example/api:v3}]
      containers: [{name: api, image: *img}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: "registry:5000/tools/job@sha256:def"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
data: {image: "not/an:image"}
`, nil, []Ref{
			{Artifact: img("registry.example/api", "v3", ""), Where: "0:Deployment/api initContainers[migrate]"},
			{Artifact: img("registry.example/api", "v3", ""), Where: "0:Deployment/api containers[api]"},
			{Artifact: img("registry:5000/tools/job", "", "sha256:def"), Where: "1:CronJob/nightly containers[job]"},
		}},
		{"a Flux HelmRelease", "apps/prod/release.yaml", `
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web}
spec:
  chart:
    spec: {chart: web, version: 1.8.0, sourceRef: {kind: HelmRepository, name: acme}}
  values:
    image: {repository: registry.example/web, tag: v9}
    sidecar: {image: "registry.example/proxy:1.2"}
`, []string{"sidecar.image"}, []Ref{
			{Artifact: change.Artifact{Kind: change.ArtifactChart, Name: "web", Version: "1.8.0"}, Where: "0:HelmRelease/web chart"},
			{Artifact: img("registry.example/web", "v9", ""), Where: "0:HelmRelease/web values.image"},
			{Artifact: img("registry.example/proxy", "1.2", ""), Where: "0:HelmRelease/web values sidecar.image"},
		}},
		{"an Argo CD Application", "apps/prod/app.yaml", `
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: shop}
spec:
  source: {repoURL: https://github.com/acme/shop, path: deploy, targetRevision: v5.0.1}
`, nil, []Ref{{Artifact: change.Artifact{Kind: change.ArtifactSource, Name: "https://github.com/acme/shop#path=deploy", Version: "v5.0.1"},
			Where: "0:Application/shop source[0]"}}},
		{"a Helm values file", "values/prod.yaml", "app:\n  image:\n    registry: registry.example\n    repository: app\n    tag: v2\n", []string{"app.image"},
			[]Ref{{Artifact: img("registry.example/app", "v2", ""), Where: "0:/ app.image"}}},
		{"an untagged image is latest", "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n", nil,
			[]Ref{{Artifact: img("nginx", "latest", ""), Where: "0:Pod/p containers[c]"}}},
		{"an empty file", "empty.yaml", "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Read(tc.file, []byte(tc.yaml), tc.values)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("refs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadRefuses: what cannot be read is an error naming the file, never
// an empty answer.
func TestReadRefuses(t *testing.T) {
	t.Parallel()
	bomb := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 0, "a"; i < 12; i++ {
		name := string(rune('b' + i))
		bomb += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	bomb += "kind: Pod\napiVersion: v1\nspec: {containers: *m}\n"
	for name, data := range map[string]string{
		"not YAML":  "kind: [Deployment\n",
		"too large": strings.Repeat("#", MaxFileBytes+1),
	} {
		if _, err := Read("overlays/production/"+name+".yaml", []byte(data), nil); err == nil || !strings.Contains(err.Error(), "overlays/production/"+name+".yaml") {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	// Aliases are followed only along the paths that hold references, so
	// a billion laughs costs nothing: here it names no image.
	if refs, err := Read("bomb.yaml", []byte(bomb), nil); err != nil || refs != nil {
		t.Errorf("alias bomb: %v %v", refs, err)
	}
}

func TestRuns(t *testing.T) {
	t.Parallel()
	pinned := img("app", "v1", "sha256:aaa")
	if !pinned.Runs(img("app", "v2", "sha256:aaa")) || pinned.Runs(img("app", "v1", "sha256:bbb")) || pinned.Runs(img("app", "v1", "")) {
		t.Error("a digest-pinned image matches only the same digest")
	}
	if tag := img("app", "v1", ""); !tag.Runs(img("app", "v1", "sha256:x")) || tag.Runs(img("app", "v2", "")) || tag.Runs(img("other", "v1", "")) {
		t.Error("a tagged image matches the same name and tag")
	}
}

// FuzzRead: any bytes give references or an error, never a panic.
func FuzzRead(f *testing.F) {
	f.Add([]byte("kind: Kustomization\napiVersion: kustomize.config.k8s.io/v1beta1\nimages: [{name: a, newTag: b}]\n"))
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nspec: {template: {spec: {containers: [{image: x:1}]}}}\n---\nkind: Pod\n"))
	f.Add([]byte("a: &x [1]\nb: [*x, *x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := Read("f.yaml", data, []string{"image", "a.b"})
		if err != nil && refs != nil {
			t.Fatal("refs with an error")
		}
	})
}
