//go:build !linux

package fs

import (
	"os"
	"syscall"
)

// syncFS flushes the file systems; only Linux can limit it to one.
func syncFS(string) error {
	syscall.Sync()
	return nil
}

// syncData flushes f.
func syncData(f *os.File) error { return f.Sync() }
