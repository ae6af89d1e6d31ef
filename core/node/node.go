// Package node assembles one Chronik broker from its configuration and the
// component factories: store, consensus engine, broker and protocol server,
// started in that order and stopped in reverse. The chronik binary and the
// in-process integration clusters both use it, so they run the same code.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/chronik-go/chronik/core/broker"
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
	"github.com/chronik-go/chronik/core/storage"
)

// SettingsFunc returns the settings of the named component (storage,
// consensus, broker, protocol), with its data directory.
type SettingsFunc func(name string) component.Settings

// Node is a running broker.
type Node struct {
	log    *slog.Logger
	Store  storage.Store
	Engine consensus.Engine
	Broker *broker.Broker
	Server protocol.Server
	// ownStore says whether Shutdown closes the store.
	ownStore bool
	id       int32
	debug    bool // telemetry.debug: RegisterDebug serves the debug endpoints
}

// Start opens the store named by cfg and starts the broker on it.
func Start(ctx context.Context, cfg *config.Config, f config.Factories, settings SettingsFunc) (*Node, error) {
	store, err := OpenStore(ctx, cfg, f, settings("storage"))
	if err != nil {
		return nil, err
	}
	n, err := StartOn(ctx, cfg, f, settings, store)
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	n.ownStore = true
	return n, nil
}

// OpenStore opens the store cfg.Storage selects, in process or as a plugin
// subprocess (through f.Plugins), in set.DataDir.
func OpenStore(ctx context.Context, cfg *config.Config, f config.Factories, set component.Settings) (storage.Store, error) {
	if set.DataDir != "" {
		if err := os.MkdirAll(set.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	if cfg.Storage.Plugin.Mode == config.Subprocess {
		if f.Plugins == nil {
			return nil, fmt.Errorf("storage %s: plugin mode subprocess: this build has no plugin host", cfg.Storage.Type)
		}
		store, err := f.Plugins.OpenStorage(ctx, set, cfg)
		if err != nil {
			return nil, fmt.Errorf("storage %s (subprocess): open %s: %w", cfg.Storage.Type, set.DataDir, err)
		}
		return store, nil
	}
	sf, err := component.Lookup("storage", f.Storage, cfg.Storage.Type)
	if err != nil {
		return nil, err
	}
	store, err := sf.Create(ctx, set, cfg.Storage.Config)
	if err != nil {
		return nil, fmt.Errorf("storage %s: open %s: %w", cfg.Storage.Type, set.DataDir, err)
	}
	return store, nil
}

// StartEngine creates the consensus engine cfg.Consensus selects over
// store, in process or as a plugin subprocess (through f.Plugins).
func StartEngine(ctx context.Context, cfg *config.Config, f config.Factories, set component.Settings, store storage.Store) (consensus.Engine, error) {
	p := consensus.Params{
		Node:   consensus.NodeID(cfg.Node.ID),
		Store:  store,
		Listen: cfg.Cluster.Listen,
		Peers:  cfg.PeerAddrs(),
	}
	if cfg.Consensus.Plugin.Mode == config.Subprocess {
		if f.Plugins == nil {
			return nil, fmt.Errorf("consensus %s: plugin mode subprocess: this build has no plugin host", cfg.Consensus.Type)
		}
		eng, err := f.Plugins.StartConsensus(ctx, set, cfg, p)
		if err != nil {
			return nil, fmt.Errorf("consensus %s (subprocess): %w", cfg.Consensus.Type, err)
		}
		return eng, nil
	}
	cf, err := component.Lookup("consensus", f.Consensus, cfg.Consensus.Type)
	if err != nil {
		return nil, err
	}
	eng, err := cf.Create(ctx, set, cfg.Consensus.Config, p)
	if err != nil {
		return nil, fmt.Errorf("consensus %s: %w", cfg.Consensus.Type, err)
	}
	return eng, nil
}

// StartOn starts the broker on an open store, which the caller keeps and
// closes after Shutdown.
func StartOn(ctx context.Context, cfg *config.Config, f config.Factories, settings SettingsFunc, store storage.Store) (_ *Node, err error) {
	n := &Node{log: settings("node").Logger, Store: store, id: cfg.Node.ID, debug: cfg.Telemetry.Debug}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.stop(context.Background()))
		}
	}()
	if n.Engine, err = StartEngine(ctx, cfg, f, settings("consensus"), store); err != nil {
		return nil, err
	}
	n.Broker, err = broker.New(settings("broker"), cfg.BrokerConfig(), n.Engine, store, nil)
	if err != nil {
		return nil, err
	}
	pf, err := component.Lookup("protocol", f.Protocol, cfg.Protocol.Type)
	if err != nil {
		return nil, err
	}
	// The server starts first (a client reaching it before the broker has
	// joined the metadata group sees no topics yet and retries), so that a
	// port-0 listener's address can be advertised.
	n.Server, err = pf.Create(ctx, settings("protocol"), cfg.Protocol.Config, n.Broker)
	if err != nil {
		return nil, fmt.Errorf("protocol %s: %w", cfg.Protocol.Type, err)
	}
	if host, port, err := net.SplitHostPort(n.Server.Addr()); err == nil {
		if p, err := strconv.ParseUint(port, 10, 16); err == nil {
			n.Broker.SetAdvertised(host, int32(p))
		}
	}
	if err := n.Broker.Start(ctx); err != nil {
		return nil, err
	}
	if fwd, ok := n.Server.(broker.Forwarder); ok {
		n.Broker.SetForwarder(fwd)
	}
	n.log.Info("broker started", "node", cfg.Node.ID, "kafka", n.Server.Addr(), "cluster", n.Engine.Addr(),
		"storage", cfg.Storage.Type, "consensus", cfg.Consensus.Type)
	return n, nil
}

// Shutdown hands this broker's leaderships to other brokers, then stops the
// broker, the protocol server, the engine and (if Start opened it) the store.
func (n *Node) Shutdown(ctx context.Context) error {
	return n.stop(ctx)
}

// Kill stops the broker without handing leadership off, as close to a crash
// as a process can do to itself: other brokers see it vanish. The store is
// still closed, so what it holds is what it had written.
func (n *Node) Kill(ctx context.Context) error {
	n.Broker.Abort()
	return n.stop(ctx)
}

func (n *Node) stop(ctx context.Context) error {
	var errs []error
	if n.Broker != nil {
		errs = append(errs, n.Broker.Shutdown(ctx))
	}
	if n.Server != nil {
		errs = append(errs, n.Server.Shutdown(ctx))
	}
	if n.Engine != nil {
		errs = append(errs, n.Engine.Shutdown(ctx))
	}
	if n.ownStore && n.Store != nil {
		errs = append(errs, n.Store.Close())
	}
	return errors.Join(errs...)
}
