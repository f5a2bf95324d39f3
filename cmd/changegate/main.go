// Command changegate enforces SOC 2 CC8.1 change management on GitHub and
// keeps the evidence. main only wires: see run.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	// Freeze windows name IANA time zones; the distroless image has no
	// zoneinfo, so the binary carries it.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}
