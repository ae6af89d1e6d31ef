package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/telemetry"
)

// shutdownTimeout bounds the flush of telemetry and the close of the store
// after the broker stops.
const shutdownTimeout = 10 * time.Second

func newServeCmd(c cli) *cobra.Command {
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a broker",
		Long: "Run a broker until SIGINT or SIGTERM. The configuration comes from the defaults, the file\n" +
			"(--config, or chronik.yaml in the working directory), CHRONIK_* environment variables and\n" +
			"the flags, in that order; see docs/CONFIGURATION.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, f, err := lf.load(cmd, c)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), c, cfg, f)
		},
	}
	lf.register(cmd)
	return cmd
}

// serve sets up what every part of the broker shares (telemetry, the
// store), calls run, and tears them down after it returns.
func serve(ctx context.Context, c cli, cfg *config.Config, f config.Factories) (err error) {
	tel, err := telemetry.New(ctx, cfg.Telemetry, telemetry.Options{
		LogOutput:       c.stderr,
		ServiceInstance: strconv.Itoa(int(cfg.Node.ID)),
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(sctx))
	}()
	log := tel.Logger
	log.Info("configuration loaded", "file", cfg.File, "node", cfg.Node.ID, "cluster", cfg.Cluster.ID,
		"data_dir", cfg.Node.DataDir, "metrics", tel.MetricsAddr())

	d := serveDeps{Config: cfg, Factories: f, Telemetry: tel}
	sf, err := component.Lookup("storage", f.Storage, cfg.Storage.Type)
	if err != nil {
		return err
	}
	set := d.Settings("storage")
	if err := os.MkdirAll(set.DataDir, 0o750); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	d.Store, err = sf.Create(ctx, set, cfg.Storage.Config)
	if err != nil {
		return fmt.Errorf("storage %s: open %s: %w", cfg.Storage.Type, set.DataDir, err)
	}
	log.Info("storage open", "type", cfg.Storage.Type, "dir", set.DataDir)
	defer func() {
		if cerr := d.Store.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("storage: close: %w", cerr))
		}
	}()
	return run(ctx, d)
}

// serveDeps is what run gets: the loaded configuration, the factories it
// selects from, telemetry, and the open store. serve owns the store and the
// telemetry and closes them after run returns.
type serveDeps struct {
	Config    *config.Config
	Factories config.Factories
	Telemetry *telemetry.Telemetry
	Store     storage.Store
}

// Settings returns the component.Settings for the named component
// (storage, consensus, broker, protocol): the shared telemetry, a logger
// tagged with the name, and <data_dir>/<name> as its directory.
func (d serveDeps) Settings(name string) component.Settings {
	return d.Telemetry.Settings(name, filepath.Join(d.Config.Node.DataDir, name))
}

// run starts the broker on the open store (node.StartOn: consensus engine,
// broker, protocol server), adds the debug endpoints to the metrics listener
// if telemetry.debug is on, and blocks until ctx is done (a signal), then
// stops it: leadership handed to other brokers first, then the protocol
// server and the engine.
func run(ctx context.Context, d serveDeps) error {
	n, err := node.StartOn(ctx, d.Config, d.Factories, d.Settings, d.Store)
	if err != nil {
		return err
	}
	n.RegisterDebug(d.Telemetry)
	<-ctx.Done()
	d.Telemetry.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return n.Shutdown(sctx)
}
