// Package testenv finds test material and services that live outside the
// repository: ../shared/testdata and the servers that .ci/run starts.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedTestdata returns the path of the shared test material
// (../shared/testdata beside the repository, or $CHANGEGATE_SHARED_TESTDATA).
// It returns "" when the folder is absent.
func SharedTestdata() string {
	if dir := os.Getenv("CHANGEGATE_SHARED_TESTDATA"); dir != "" {
		if isDir(dir) {
			return dir
		}
		return ""
	}
	root := RepoRoot()
	if root == "" {
		return ""
	}
	dir := filepath.Join(root, "..", "shared", "testdata")
	if !isDir(dir) {
		return ""
	}
	return dir
}

// RequireSharedTestdata returns the shared test material folder, or skips the
// test with a message when it is absent.
func RequireSharedTestdata(t testing.TB) string {
	t.Helper()
	dir := SharedTestdata()
	if dir == "" {
		t.Skip("../shared/testdata is absent (set CHANGEGATE_SHARED_TESTDATA to point at it); skipping")
	}
	return dir
}

// RepoRoot walks up from the working directory to the folder holding go.mod.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
