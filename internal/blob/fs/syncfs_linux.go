package fs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes every dirty file of the file system that holds root, in
// one call: cheaper than a sync per blob because the device sees one flush.
func syncFS(root string) error {
	d, err := os.Open(root)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", root, err)
	}
	return nil
}

// syncData flushes f's data, and only the metadata needed to read it back:
// a journal file overwritten in place needs no inode update on disk.
func syncData(f *os.File) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
	}
	return nil
}
