package main

import (
	"context"
	"errors"
	"fmt"

	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/telemetry"
	"github.com/chronik-go/chronik/plugins"
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
	set := d.Settings("storage")
	d.Store, err = node.OpenStore(ctx, cfg, f, set)
	if err != nil {
		var pe *plugins.ConfigError
		if errors.As(err, &pe) { // a configuration error: exit 2
			return &config.Error{Problems: []error{err}}
		}
		return err
	}
	log.Info("storage open", "type", cfg.Storage.Type, "mode", cfg.Storage.Plugin.Mode, "dir", set.DataDir)
	defer func() {
		if cerr := d.Store.Close(); cerr != nil && !d.storeFailed {
			err = errors.Join(err, fmt.Errorf("storage: close: %w", cerr))
		}
	}()
	return run(ctx, &d)
}

// serveDeps is what run gets: the loaded configuration, the factories it
// selects from, telemetry, and the open store. serve owns the store and the
// telemetry and closes them after run returns.
type serveDeps struct {
	Config    *config.Config
	Factories config.Factories
	Telemetry *telemetry.Telemetry
	Store     storage.Store

	storeFailed bool // the store's plugin process died
}

// pluginProcess is what a component run as a plugin subprocess offers
// besides its interface: Done is closed when it has failed for good (the
// process ended or the connection to it broke), and Err says how.
type pluginProcess interface {
	Done() <-chan struct{}
	Err() error
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
func run(ctx context.Context, d *serveDeps) error {
	n, err := node.StartOn(ctx, d.Config, d.Factories, d.Settings, d.Store)
	if err != nil {
		return err
	}
	n.RegisterDebug(d.Telemetry)
	var storeDied, engineDied <-chan struct{}
	if p, ok := d.Store.(pluginProcess); ok {
		storeDied = p.Done()
	}
	if p, ok := n.Engine.(pluginProcess); ok {
		engineDied = p.Done()
	}
	select {
	case <-ctx.Done():
	case <-engineDied:
		// The engine is gone: this broker leads nothing and replicates
		// nothing any more. Exit at once; requests in flight end with
		// the connections (clients retry elsewhere) and the other
		// replicas elect new leaders. A restart recovers from the store.
		perr := n.Engine.(pluginProcess).Err()
		d.Telemetry.Logger.Error("consensus plugin died; stopping the broker", "type", d.Config.Consensus.Type, "err", perr)
		n.Broker.Abort()
		return fmt.Errorf("consensus %s: the plugin process died: %w", d.Config.Consensus.Type, perr)
	case <-storeDied:
		// The store is gone: nothing can be written, nothing acknowledged
		// any more. The groups have failed the requests in flight with
		// KAFKA_STORAGE_ERROR (retriable); exit at once rather than hand
		// leaderships over, which needs the store, and leave the rest to
		// the other replicas. A restart recovers from disk as after a
		// crash.
		perr := d.Store.(pluginProcess).Err()
		d.storeFailed = true
		d.Telemetry.Logger.Error("storage plugin died; stopping the broker", "type", d.Config.Storage.Type, "err", perr)
		return fmt.Errorf("storage %s: the plugin process died: %w", d.Config.Storage.Type, perr)
	}
	d.Telemetry.Logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return n.Shutdown(sctx)
}
