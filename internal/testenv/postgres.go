package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DatabaseEnv names the PostgreSQL server tests use: a URL whose user may
// create databases. .ci/run starts a throwaway cluster and sets it.
const DatabaseEnv = "CHANGEGATE_TEST_DATABASE_URL"

// PostgresDatabase creates an empty database on the server DatabaseEnv
// names and returns its URL; the database is dropped when the test ends.
// Without the variable the test is skipped, saying so.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(DatabaseEnv)
	if base == "" {
		t.Skipf("set %s=postgres://USER@127.0.0.1:PORT/postgres?sslmode=disable to run the PostgreSQL tests (.ci/run starts a server)", DatabaseEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", DatabaseEnv, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "cg_test_" + hex.EncodeToString(b)
	admin := func(sql string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("connect to %s: %v", DatabaseEnv, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin("CREATE DATABASE " + name)
	t.Cleanup(func() { admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u.Path = "/" + name
	return u.String()
}
