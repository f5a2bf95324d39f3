package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type appManifest struct {
	Permissions map[string]string `json:"default_permissions"`
	Events      []string          `json:"default_events"`
}

func readManifest(t *testing.T, name string) appManifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	var m appManifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// TestManifests: the full manifest subscribes to the gate and the merge
// queue with the permissions they need; the merge-only one asks for no
// deployment write access and no protection-rule event.
func TestManifests(t *testing.T) {
	t.Parallel()
	full := readManifest(t, "github-app-manifest.json")
	for _, e := range []string{"deployment_protection_rule", "deployment_review", "merge_group", "deployment_status", "pull_request"} {
		if !slices.Contains(full.Events, e) {
			t.Errorf("the manifest lacks the %s event", e)
		}
	}
	if full.Permissions["deployments"] != "write" || full.Permissions["merge_queues"] != "read" || full.Permissions["actions"] != "read" {
		t.Errorf("the manifest's permissions: %v", full.Permissions)
	}
	mergeOnly := readManifest(t, "github-app-manifest.merge-only.json")
	if slices.Contains(mergeOnly.Events, "deployment_protection_rule") || slices.Contains(mergeOnly.Events, "deployment_review") || mergeOnly.Permissions["deployments"] != "read" || mergeOnly.Permissions["actions"] != "" {
		t.Errorf("the merge-only manifest: %v %v", mergeOnly.Events, mergeOnly.Permissions)
	}
	if !slices.Contains(mergeOnly.Events, "merge_group") || mergeOnly.Permissions["merge_queues"] != "read" {
		t.Errorf("the merge-only manifest lacks the merge queue: %v %v", mergeOnly.Events, mergeOnly.Permissions)
	}
}
