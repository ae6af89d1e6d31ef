package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/cmd/components"
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/plugins"
	"github.com/chronik-go/chronik/plugins/sdk"
)

func newPluginCmd(c cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "List plugins; serve a built-in component as a plugin",
	}
	var lf loadFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the built-in components and the plugins found in plugins.dir, with their protocol versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, f, err := lf.load(cmd, c)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KIND\tTYPE\tPROTOCOL\tSOURCE")
			for _, k := range []struct {
				kind    string
				types   []component.Type
				version int
			}{
				{"storage", slices.Collect(maps.Keys(f.Storage)), sdk.StorageProtocolVersion},
				{"consensus", slices.Collect(maps.Keys(f.Consensus)), sdk.ConsensusProtocolVersion},
			} {
				slices.Sort(k.types)
				for _, t := range k.types {
					fmt.Fprintf(w, "%s\t%s\t%d\tbuilt in (chronik plugin serve %s %s)\n", k.kind, t, k.version, k.kind, t)
				}
			}
			found, err := plugins.Discover(cfg.Plugins.Dir)
			if err != nil {
				return fmt.Errorf("plugins.dir: %w", err)
			}
			for _, p := range found {
				ours := map[string]int{"storage": sdk.StorageProtocolVersion, "consensus": sdk.ConsensusProtocolVersion}[p.Kind]
				if ours == 0 {
					fmt.Fprintf(w, "%s\t%s\t-\t%s (unknown kind)\n", p.Kind, p.Type, p.Path)
					continue
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
				v, err := plugins.Probe(ctx, p.Kind, plugins.Command{Path: p.Path})
				cancel()
				switch {
				case err != nil && v != 0:
					fmt.Fprintf(w, "%s\t%s\t%d (broker: %d)\t%s: incompatible\n", p.Kind, p.Type, v, ours, p.Path)
				case err != nil:
					fmt.Fprintf(w, "%s\t%s\t?\t%s: %v\n", p.Kind, p.Type, p.Path, err)
				default:
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", p.Kind, p.Type, v, p.Path)
				}
			}
			return w.Flush()
		},
	}
	lf.register(list)
	serve := &cobra.Command{
		Use:    "serve KIND TYPE",
		Short:  "Serve a built-in component as a plugin (the broker runs this; not for use by hand)",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := c.factories()
			if err != nil {
				return err
			}
			switch args[0] {
			case "storage":
				err = components.ServeStorage(f, component.Type(args[1]))
			case "consensus":
				err = components.ServeConsensus(f, component.Type(args[1]))
			default:
				err = fmt.Errorf("plugin serve: kind %q: want storage or consensus", args[0])
			}
			if err != nil {
				return usageError{err}
			}
			return nil
		},
	}
	cmd.AddCommand(list, serve)
	return cmd
}
