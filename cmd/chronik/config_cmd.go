package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/plugins"
)

func newConfigCmd(c cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or check the configuration",
	}
	var printFlags, checkFlags loadFlags
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration as YAML",
		Long: "Print the configuration chronik serve would use, after defaults, file, environment and flags,\n" +
			"as YAML. The output is a valid config file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := printFlags.load(cmd, c)
			if err != nil {
				return err
			}
			out, err := cfg.YAML()
			if err != nil {
				return err
			}
			_, err = c.stdout.Write(out)
			return err
		},
	}
	printFlags.register(print)
	check := &cobra.Command{
		Use:   "check",
		Short: "Load and validate the configuration, reporting every problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, f, err := checkFlags.load(cmd, c)
			if err != nil {
				return err
			}
			for _, k := range []struct {
				kind  string
				p     config.Pluggable
				check func(context.Context, *config.Config) error
			}{
				{"storage", cfg.Storage, f.Plugins.CheckStorage},
				{"consensus", cfg.Consensus, f.Plugins.CheckConsensus},
			} {
				if k.p.Plugin.Mode != config.Subprocess {
					continue
				}
				// Only the plugin knows its keys: start it to check them.
				if err := k.check(cmd.Context(), cfg); err != nil {
					var pe *plugins.ConfigError
					if errors.As(err, &pe) {
						ce := &config.Error{}
						for _, p := range pe.Problems {
							ce.Problems = append(ce.Problems, fmt.Errorf("%s (checked by the plugin)", p))
						}
						return ce
					}
					return &config.Error{Problems: []error{fmt.Errorf("%s (type %s, subprocess): %w", k.kind, k.p.Type, err)}}
				}
			}
			file := cfg.File
			if file == "" {
				file = "none"
			}
			_, err = fmt.Fprintf(c.stdout, "configuration OK (file: %s; node %d; storage %s, consensus %s, protocol %s)\n",
				file, cfg.Node.ID, cfg.Storage.Type, cfg.Consensus.Type, cfg.Protocol.Type)
			return err
		},
	}
	checkFlags.register(check)
	cmd.AddCommand(print, check)
	return cmd
}
