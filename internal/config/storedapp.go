package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// StoredAppDir is where /setup keeps the App it registered, in the data
// dir: app-id, private-key.pem and webhook-secret, each mode 0600.
const StoredAppDir = "github-app"

// Files of a stored App.
const (
	storedAppID     = "app-id"
	storedAppKey    = "private-key.pem"
	storedAppSecret = "webhook-secret"
)

// StoreApp keeps the credentials of an App registered by manifest in the
// data dir. Each file is written to a temporary name and renamed, mode
// 0600, the App id last: a half-written App is never used.
func StoreApp(dataDir string, id int64, privateKey, webhookSecret string) error {
	dir := filepath.Join(dataDir, StoredAppDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store app: %w", err)
	}
	for _, f := range []struct{ name, data string }{
		{storedAppKey, privateKey}, {storedAppSecret, webhookSecret}, {storedAppID, strconv.FormatInt(id, 10)},
	} {
		if err := writePrivate(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("store app: %w", err)
		}
	}
	return nil
}

func writePrivate(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// UseStoredApp takes the App credentials /setup stored in the data dir,
// when none are configured otherwise. The App's webhook secret is used
// unless one was configured. A stored file that cannot be read, or that
// group or others can read, is an error naming it: the server must not
// start with it.
func (c *Config) UseStoredApp() error {
	if c.GitHub.Configured() {
		return nil
	}
	dir := filepath.Join(c.DataDir, StoredAppDir)
	idText, err := readPrivate(filepath.Join(dir, storedAppID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no App registered yet
	}
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(strings.TrimSpace(idText), 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("%s: %q is not an App id", filepath.Join(dir, storedAppID), idText)
	}
	keyFile := filepath.Join(dir, storedAppKey)
	if _, err := readPrivate(keyFile); err != nil {
		return err
	}
	secret, err := readPrivate(filepath.Join(dir, storedAppSecret))
	if err != nil {
		return err
	}
	c.GitHub.AppID, c.GitHub.PrivateKeyFile = id, keyFile
	if len(c.WebhookSecret) == 0 {
		c.WebhookSecret, c.WebhookSecretSource = []byte(strings.TrimSpace(secret)), filepath.Join(dir, storedAppSecret)
	}
	return nil
}

// readPrivate reads a stored secret, refusing one that group or others
// can read.
func readPrivate(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("stored App: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("stored App: %s has mode %04o: it must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("stored App: %w", err)
	}
	return string(b), nil
}
