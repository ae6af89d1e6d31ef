package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/cmd/components"
	"github.com/chronik-go/chronik/core/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitConfig  = 2 // a configuration or usage error
)

// cli is what a run of the command sees of the process: its arguments,
// environment and output. Tests fill it in.
type cli struct {
	args   []string
	env    []string // as os.Environ returns it
	dir    string   // where chronik.yaml is looked for; "" is the working directory
	stdout io.Writer
	stderr io.Writer
	// components returns the factories; nil means the built-in ones.
	components func() (config.Factories, error)
}

func (c cli) factories() (config.Factories, error) {
	if c.components != nil {
		return c.components()
	}
	return components.Factories()
}

// usageError is a bad command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// execute runs the command line and returns the process exit code.
func execute(ctx context.Context, c cli) int {
	root := newRootCmd(c)
	root.SetArgs(c.args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(c.stderr, "chronik: %v\n", err)
	var ce *config.Error
	var ue usageError
	switch {
	case errors.As(err, &ce), errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"):
		return exitConfig
	}
	return exitFailure
}

func newRootCmd(c cli) *cobra.Command {
	root := &cobra.Command{
		Use:           "chronik",
		Short:         "A Kafka-compatible broker with Raft replication",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nrun '%s --help' for usage", err, cmd.CommandPath())}
	})
	root.AddCommand(newServeCmd(c), newConfigCmd(c), newBenchCmd(c), newVerifyCmd(c), newPluginCmd(c))
	return root
}
