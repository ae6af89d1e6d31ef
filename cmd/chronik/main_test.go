package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets this test binary stand in for chronik when a test runs a
// built-in component as a plugin: the host re-executes its own binary as
// `chronik plugin serve storage <type>`.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		os.Exit(execute(context.Background(), cli{args: os.Args[1:], env: os.Environ(), stdout: os.Stdout, stderr: os.Stderr}))
	}
	os.Exit(m.Run())
}
