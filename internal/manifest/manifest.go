// Package manifest reads the artifact references that a GitOps repository
// promotes, from the YAML it deploys:
//   - kustomize images: entries (newName, newTag, digest) and remote bases;
//   - container and init container images of Deployments, StatefulSets,
//     DaemonSets, ReplicaSets, Jobs, CronJobs and Pods;
//   - Flux HelmRelease chart versions and values image.repository and
//     image.tag (or image.digest);
//   - Argo CD Application targetRevisions, for source and sources;
//   - YAML paths the policy names, in Helm values files and in HelmRelease
//     values.
//
// Other kinds hold no reference it reads, and are ignored. A file that is
// not YAML, too large or too complex is an error naming the file: the
// caller fails closed on it. The package is pure.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/changegate/changegate/internal/change"
)

// Limits on what one file may cost.
const (
	// MaxFileBytes is the largest file read.
	MaxFileBytes = 1 << 20
	// maxNodes bounds the nodes walked in one file, aliases expanded: an
	// alias bomb stops here.
	maxNodes = 200_000
	// maxDocuments bounds the documents of one file.
	maxDocuments = 1000
)

// Ref is one artifact reference and where in the file it is. Where is
// stable across edits of other parts of the file, so that the base and head
// versions of a file can be compared reference by reference.
type Ref struct {
	change.Artifact
	Where string
}

// Read returns the references in one file, in file order. values are the
// extra dotted YAML paths that hold images (policy staging.promotion
// values).
func Read(name string, data []byte, values []string) ([]Ref, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d read per manifest", name, len(data), MaxFileBytes)
	}
	r := &reader{file: name, values: values, budget: maxNodes}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		if i == maxDocuments {
			return nil, fmt.Errorf("%s: more than %d YAML documents", name, maxDocuments)
		}
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not YAML: %v", name, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(doc.Content) == 1 {
			r.document(doc.Content[0], i)
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	return r.refs, nil
}

// reader collects the references of one file.
type reader struct {
	file   string
	values []string
	budget int
	refs   []Ref
	err    error
}

func (r *reader) add(a change.Artifact, where string) {
	if a.Name == "" {
		return
	}
	r.refs = append(r.refs, Ref{Artifact: a, Where: where})
}

// document reads one YAML document by its kind.
func (r *reader) document(root *yaml.Node, index int) {
	doc := r.node(root)
	if doc == nil || doc.Kind != yaml.MappingNode {
		return
	}
	kind, api := r.str(doc, "kind"), r.str(doc, "apiVersion")
	id := fmt.Sprintf("%d:%s/%s", index, kind, r.str(r.get(doc, "metadata"), "name"))
	switch {
	case kind == "Kustomization" && strings.HasPrefix(api, "kustomize.config.k8s.io/"),
		kind == "" && api == "" && (r.get(doc, "images") != nil || r.get(doc, "resources") != nil) && isKustomization(r.file):
		r.kustomization(doc, id)
	case kind == "HelmRelease" && strings.HasPrefix(api, "helm.toolkit.fluxcd.io/"):
		r.helmRelease(doc, id)
	case kind == "Application" && strings.HasPrefix(api, "argoproj.io/"):
		r.application(doc, id)
	case workloadKinds[kind]:
		r.workload(doc, kind, id)
	case kind == "" && api == "":
		r.valuesPaths(doc, id)
	}
}

func isKustomization(file string) bool {
	base := file[strings.LastIndex(file, "/")+1:]
	return base == "kustomization.yaml" || base == "kustomization.yml" || base == "Kustomization"
}

// workloadKinds are the kinds whose pod templates name images.
var workloadKinds = map[string]bool{
	"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true,
	"Job": true, "CronJob": true, "Pod": true,
}

// kustomization reads images: entries, keyed by name, and remote bases.
func (r *reader) kustomization(doc *yaml.Node, id string) {
	for _, img := range r.items(r.get(doc, "images")) {
		name := r.str(img, "name")
		a := change.Artifact{Kind: change.ArtifactImage, Name: name, Version: r.str(img, "newTag"), Digest: r.str(img, "digest")}
		if n := r.str(img, "newName"); n != "" {
			a.Name = n
		}
		r.add(a, id+" images["+name+"]")
	}
	for _, key := range []string{"resources", "bases", "components"} {
		for _, res := range r.items(r.get(doc, key)) {
			if res.Kind == yaml.ScalarNode && isRemote(res.Value) {
				r.add(remoteBase(res.Value), id+" "+key+"["+stripRef(res.Value)+"]")
			}
		}
	}
}

// workload reads the images of a workload's pod template.
func (r *reader) workload(doc *yaml.Node, kind, id string) {
	spec := r.get(doc, "spec")
	switch kind {
	case "Pod":
	case "CronJob":
		spec = r.path(spec, "jobTemplate", "spec", "template", "spec")
	default:
		spec = r.path(spec, "template", "spec")
	}
	for _, list := range []string{"initContainers", "containers"} {
		for _, c := range r.items(r.get(spec, list)) {
			if img := r.str(c, "image"); img != "" {
				r.add(ParseImage(img), fmt.Sprintf("%s %s[%s]", id, list, r.str(c, "name")))
			}
		}
	}
}

// helmRelease reads a Flux HelmRelease's chart and the images in its
// values.
func (r *reader) helmRelease(doc *yaml.Node, id string) {
	chart := r.path(doc, "spec", "chart", "spec")
	if name := r.str(chart, "chart"); name != "" {
		r.add(change.Artifact{Kind: change.ArtifactChart, Name: name, Version: r.str(chart, "version")}, id+" chart")
	}
	values := r.path(doc, "spec", "values")
	r.imageAt(r.get(values, "image"), id+" values.image")
	r.valuesPaths(values, id+" values")
}

// application reads an Argo CD Application's sources.
func (r *reader) application(doc *yaml.Node, id string) {
	spec := r.get(doc, "spec")
	sources := r.items(r.get(spec, "sources"))
	if src := r.get(spec, "source"); src != nil {
		sources = append([]*yaml.Node{src}, sources...)
	}
	for i, src := range sources {
		name := r.str(src, "repoURL")
		if sub := r.str(src, "chart"); sub != "" {
			name += "#chart=" + sub
		} else if sub := r.str(src, "path"); sub != "" {
			name += "#path=" + sub
		}
		rev := r.str(src, "targetRevision")
		if rev == "" {
			rev = "HEAD"
		}
		r.add(change.Artifact{Kind: change.ArtifactSource, Name: name, Version: rev}, fmt.Sprintf("%s source[%d]", id, i))
	}
}

// valuesPaths reads the configured image paths of a values mapping.
func (r *reader) valuesPaths(values *yaml.Node, id string) {
	for _, p := range r.values {
		r.imageAt(r.path(values, strings.Split(p, ".")...), id+" "+p)
	}
}

// imageAt reads an image written as "repo:tag", or as a mapping with
// repository and tag or digest (the Helm chart convention).
func (r *reader) imageAt(n *yaml.Node, where string) {
	n = r.node(n)
	switch {
	case n == nil:
	case n.Kind == yaml.ScalarNode && n.Value != "":
		r.add(ParseImage(n.Value), where)
	case n.Kind == yaml.MappingNode:
		repo := r.str(n, "repository")
		if reg := r.str(n, "registry"); reg != "" && repo != "" {
			repo = reg + "/" + repo
		}
		if repo != "" {
			r.add(change.Artifact{Kind: change.ArtifactImage, Name: repo, Version: r.str(n, "tag"), Digest: r.str(n, "digest")}, where)
		}
	}
}

// ParseImage splits a container image reference: registry/name:tag@digest.
// A reference with neither tag nor digest means the tag latest.
func ParseImage(s string) change.Artifact {
	a := change.Artifact{Kind: change.ArtifactImage}
	s, a.Digest, _ = strings.Cut(strings.TrimSpace(s), "@")
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		s, a.Version = s[:i], s[i+1:]
	}
	a.Name = s
	if a.Version == "" && a.Digest == "" {
		a.Version = "latest"
	}
	return a
}

func isRemote(s string) bool {
	return strings.Contains(s, "://") || strings.HasPrefix(s, "github.com/") || strings.HasPrefix(s, "git@") ||
		strings.HasPrefix(s, "gitlab.com/") || strings.HasPrefix(s, "bitbucket.org/")
}

// remoteBase is a kustomize remote resource as an artifact: its URL, at
// its ref (or HEAD).
func remoteBase(s string) change.Artifact {
	a := change.Artifact{Kind: change.ArtifactSource, Name: stripRef(s), Version: "HEAD"}
	if _, q, ok := strings.Cut(s, "?"); ok {
		for _, kv := range strings.Split(q, "&") {
			if k, v, _ := strings.Cut(kv, "="); k == "ref" || k == "version" {
				a.Version = v
			}
		}
	}
	return a
}

func stripRef(s string) string {
	s, _, _ = strings.Cut(s, "?")
	return s
}

// node follows aliases and charges the budget; nil once it is spent.
func (r *reader) node(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return nil
	}
	r.budget--
	if r.budget < 0 {
		if r.err == nil {
			r.err = fmt.Errorf("%s: too complex (more than %d YAML nodes with aliases expanded)", r.file, maxNodes)
		}
		return nil
	}
	return n
}

// get is the value of key in a mapping, or nil.
func (r *reader) get(m *yaml.Node, key string) *yaml.Node {
	m = r.node(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := r.node(m.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func (r *reader) path(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = r.get(n, k)
	}
	return n
}

// str is the scalar at key, or "".
func (r *reader) str(m *yaml.Node, key string) string {
	v := r.node(r.get(m, key))
	if v == nil || v.Kind != yaml.ScalarNode {
		return ""
	}
	return v.Value
}

// items are a list's items, aliases followed.
func (r *reader) items(n *yaml.Node) []*yaml.Node {
	n = r.node(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, it := range n.Content {
		if it = r.node(it); it != nil {
			out = append(out, it)
		}
	}
	return slices.Clip(out)
}
