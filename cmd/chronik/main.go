// Command chronik runs a Chronik broker and checks its configuration.
//
//	chronik serve [--config chronik.yaml] [--set key=value]...
//	chronik config print    the effective configuration, as YAML
//	chronik config check    load and validate, report every problem
//
// Exit codes: 0 success, 1 failure, 2 a configuration or usage error.
// docs/CONFIGURATION.md lists every key; it is generated from the defaults:
//
//go:generate go test -run TestConfigurationDoc -update .
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, cli{args: os.Args[1:], env: os.Environ(), stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}
