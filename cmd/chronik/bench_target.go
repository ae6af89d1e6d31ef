package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/netfault"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/telemetry"
	"github.com/chronik-go/chronik/plugins"
)

// benchTargetRun is a started target: where clients connect, the topic's
// replication factor unless --replication-factor says otherwise (-1: the
// broker default), how to stop it, and for in-process Chronik brokers
// their storage.
type benchTargetRun struct {
	addrs       []string
	replication int
	stop        func(context.Context) error
	storage     *storageRun
}

// storageRun is the storage of a chronik target's brokers, as configured.
type storageRun struct {
	brokers int
	typ     string
	mode    config.PluginMode
	mtls    bool
	open    []time.Duration // node.OpenStore, per broker
	pids    []int           // of the plugin processes, per broker (0: in process)
}

// startTarget starts the named target; see the bench command's help.
func startTarget(ctx context.Context, c cli, o benchOptions, name, runDir string) (*benchTargetRun, error) {
	switch {
	case name == targetKfake:
		fc, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("kfake: %w", err)
		}
		return &benchTargetRun{
			addrs:       fc.ListenAddrs(),
			replication: 1,
			stop:        func(context.Context) error { fc.Close(); return nil },
		}, nil
	case name == targetExternal:
		return &benchTargetRun{addrs: o.brokers, replication: -1, stop: func(context.Context) error { return nil }}, nil
	}
	t, err := parseChronikTarget(name)
	if err != nil {
		return nil, err
	}
	return startChronik(ctx, c, o, t, filepath.Join(runDir, fileTag(name)))
}

// startChronik starts t.brokers Chronik brokers in this process, each
// configured as `chronik serve` would be from the embedded defaults plus
// command-line keys: config.Load (each component's factory DefaultConfig,
// overlaid with the keys), telemetry, then node.OpenStore (timed) and
// node.StartOn. Ports are picked free on loopback, as
// integration.StartCluster does.
func startChronik(ctx context.Context, c cli, o benchOptions, t chronikTarget, dir string) (*benchTargetRun, error) {
	f, err := c.factories()
	if err != nil {
		return nil, err
	}
	n := t.brokers
	raft, err := netfault.FreeAddrs(n)
	if err != nil {
		return nil, err
	}
	kafkaAddrs, err := netfault.FreeAddrs(n)
	if err != nil {
		return nil, err
	}
	cfgs := make([]*config.Config, n)
	for i := range n {
		var peers []string
		for j := range n {
			if j != i {
				peers = append(peers, fmt.Sprintf("%d=%s/%s", j+1, raft[j], kafkaAddrs[j]))
			}
		}
		set := []string{
			"node.id=" + strconv.Itoa(i+1),
			"node.data_dir=" + filepath.Join(dir, fmt.Sprintf("node-%d", i+1)),
			"cluster.listen=" + raft[i],
			"protocol.listen=" + kafkaAddrs[i],
			"kafka.advertised=" + kafkaAddrs[i],
			"storage.type=" + o.storage,
			"consensus.type=" + o.consensus,
			"broker.default_replication_factor=" + strconv.Itoa(min(n, 3)),
			"telemetry.prometheus_listen=", // n brokers in one process would share the port
			"telemetry.log_level=" + o.logLevel,
		}
		if len(peers) > 0 {
			set = append(set, "cluster.peers="+strings.Join(peers, ","))
		}
		if o.pluginsDir != "" {
			set = append(set, "plugins.dir="+o.pluginsDir)
		}
		set = append(set, o.set...)
		set = append(set, t.storageKeys(f)...)
		// Dir: a chronik.yaml in the working directory is not read;
		// Env: nor are CHRONIK_* variables. Only --set changes the defaults.
		cfgs[i], err = config.Load(f, config.Sources{Dir: dir, Set: set})
		if err != nil {
			return nil, err
		}
	}
	st := &storageRun{
		brokers: n, typ: string(cfgs[0].Storage.Type), mode: cfgs[0].Storage.Plugin.Mode,
		mtls: cfgs[0].Storage.Plugin.AutoMTLS, open: make([]time.Duration, n), pids: make([]int, n),
	}
	type started struct {
		n     *node.Node
		store storage.Store
		tel   *telemetry.Telemetry
	}
	nodes := make([]started, n)
	stop := func(ctx context.Context) error {
		var (
			wg   sync.WaitGroup
			errs = make([]error, n)
		)
		for i, s := range nodes {
			wg.Go(func() {
				if s.n != nil {
					errs[i] = s.n.Shutdown(ctx)
				}
				if s.store != nil {
					errs[i] = errors.Join(errs[i], s.store.Close())
				}
				if s.tel != nil {
					errs[i] = errors.Join(errs[i], s.tel.Shutdown(ctx))
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	// Brokers of a new cluster start together: each waits for the others to
	// form the metadata group.
	var (
		wg   sync.WaitGroup
		errs = make([]error, n)
	)
	for i, cfg := range cfgs {
		wg.Go(func() {
			tel, err := telemetry.New(ctx, cfg.Telemetry, telemetry.Options{
				LogOutput: c.stderr, ServiceInstance: strconv.Itoa(int(cfg.Node.ID)),
			})
			if err != nil {
				errs[i] = err
				return
			}
			nodes[i].tel = tel
			settings := func(name string) component.Settings {
				return tel.Settings(name, filepath.Join(cfg.Node.DataDir, name))
			}
			start := time.Now()
			nodes[i].store, errs[i] = node.OpenStore(ctx, cfg, f, settings("storage"))
			st.open[i] = time.Since(start)
			if errs[i] == nil {
				if ps, ok := nodes[i].store.(*plugins.Store); ok {
					st.pids[i] = ps.Pid()
				}
				nodes[i].n, errs[i] = node.StartOn(ctx, cfg, f, settings, nodes[i].store)
			}
			if errs[i] != nil {
				errs[i] = fmt.Errorf("broker %d: %w", i+1, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, stop(context.Background()))
	}
	return &benchTargetRun{addrs: kafkaAddrs, replication: min(n, 3), stop: stop, storage: st}, nil
}

// storageKeys are the config keys t sets, after --set: storage.type, and
// storage.plugin.mode (subprocess by default for a type not built in).
func (t chronikTarget) storageKeys(f config.Factories) []string {
	if t.storage == "" {
		return nil
	}
	keys := []string{"storage.type=" + t.storage}
	mode := t.mode
	if _, builtin := f.Storage[component.Type(t.storage)]; mode == "" && !builtin {
		mode = modeSubprocess
	}
	switch mode {
	case modeInProcess:
		keys = append(keys, "storage.plugin.mode="+string(config.InProcess))
	case modeSubprocess:
		keys = append(keys, "storage.plugin.mode="+string(config.Subprocess))
	case modeSubprocessMTLS:
		keys = append(keys, "storage.plugin.mode="+string(config.Subprocess), "storage.plugin.auto_mtls=true")
	}
	return keys
}
