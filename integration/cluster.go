// Package integration starts Chronik clusters on loopback, in process, and
// drives them with real Kafka clients over TCP. The harness here is used by
// the tests in this module.
package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chronik-go/chronik/cmd/components"
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/netfault"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/plugins"
	kafka "github.com/chronik-go/chronik/protocol-kafka"
	wal "github.com/chronik-go/chronik/storage-wal"
)

// Options describe a cluster.
type Options struct {
	Brokers   int
	Consensus component.Type // "etcd" (default)
	Storage   component.Type // "wal" (default) or "memory"
	// Configure may adjust each broker's config before it starts.
	Configure func(*config.Config)
	// LogLevel of the brokers' logs, written to the test log (default: warn).
	LogLevel slog.Level
	// RaftProxies routes every Raft link through a netfault proxy
	// (Cluster.Network) so that tests can cut, delay and heal them while
	// clients stay connected.
	RaftProxies bool
	// StoragePlugin runs each broker's store as a plugin subprocess
	// (storage.plugin.mode: subprocess): the host re-executes the current
	// executable as `<exe> plugin serve storage <type>`, so the test binary
	// must serve the plugin when started that way (this package's TestMain
	// does). The storage config, after Configure, is passed to the plugin.
	StoragePlugin bool
	// ConsensusPlugin runs each broker's consensus engine as a plugin
	// subprocess (consensus.plugin.mode: subprocess), the test binary
	// re-executed as `<exe> plugin serve consensus <type>` (TestMain).
	ConsensusPlugin bool
}

// pairing names the components' modes: the backend, then
// "-consensus-plugin" and "-storage-plugin" for those run as plugins.
func (o Options) pairing() string {
	name := string(o.Consensus)
	if name == "" {
		name = "etcd"
	}
	if o.ConsensusPlugin {
		name += "-consensus-plugin"
	}
	if o.StoragePlugin {
		name += "-storage-plugin"
	}
	return name
}

// Cluster is a running in-process cluster.
type Cluster struct {
	t     testing.TB
	opts  Options
	f     config.Factories
	dir   string
	cfgs  []*config.Config
	mu    sync.Mutex
	nodes []*node.Node // nil while stopped
	net   *netfault.Network[int32]
}

// StartCluster starts opts.Brokers brokers and stops them when the test ends.
func StartCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Brokers == 0 {
		opts.Brokers = 1
	}
	if opts.Consensus == "" {
		opts.Consensus = "etcd"
	}
	if opts.Storage == "" {
		opts.Storage = "wal"
	}
	if opts.LogLevel == 0 {
		opts.LogLevel = slog.LevelWarn
		// CHRONIK_TEST_LOG=debug|info|warn|error overrides the default.
		if v := os.Getenv("CHRONIK_TEST_LOG"); v != "" {
			_ = opts.LogLevel.UnmarshalText([]byte(v))
		}
	}
	f, err := components.Factories()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, opts: opts, f: f, dir: t.TempDir(), nodes: make([]*node.Node, opts.Brokers)}
	addrs, err := netfault.FreeAddrs(2 * opts.Brokers)
	if err != nil {
		t.Fatal(err)
	}
	raft, kafkaAddrs := addrs[:opts.Brokers], addrs[opts.Brokers:]
	peerAddr := func(from, to int) string { return raft[to] }
	if opts.RaftProxies {
		targets := map[int32]string{}
		for i, a := range raft {
			targets[int32(i+1)] = a
		}
		if c.net, err = netfault.NewNetwork(targets); err != nil {
			t.Fatal(err)
		}
		peerAddr = func(from, to int) string { return c.net.Addr(int32(from+1), int32(to+1)) }
	}
	for i := 0; i < opts.Brokers; i++ {
		cfg := config.Default()
		cfg.Node.ID = int32(i + 1)
		cfg.Node.DataDir = filepath.Join(c.dir, fmt.Sprintf("node-%d", i+1))
		cfg.Cluster.Listen = raft[i]
		cfg.Kafka.Advertised = kafkaAddrs[i]
		for j := 0; j < opts.Brokers; j++ {
			if j != i {
				cfg.Cluster.Peers = append(cfg.Cluster.Peers, config.Peer{ID: int32(j + 1), Addr: peerAddr(i, j), Kafka: kafkaAddrs[j]})
			}
		}
		cfg.Storage.Type = opts.Storage
		cfg.Consensus.Type = opts.Consensus
		cfg.Broker.DefaultReplicationFactor = int16(min(3, opts.Brokers))
		cfg.Broker.BalanceInterval = time.Second
		cfg.Storage.Config = mustDefault("storage", c.f.Storage, opts.Storage)
		cfg.Consensus.Config = mustDefault("consensus", c.f.Consensus, opts.Consensus)
		cfg.Protocol.Config = mustDefault("protocol", c.f.Protocol, "kafka")
		cfg.Protocol.Config.(*kafka.Config).Listen = kafkaAddrs[i]
		if wc, ok := cfg.Storage.Config.(*wal.Config); ok {
			wc.SegmentSize = 8 << 20 // keep preallocation small in tests
		}
		if opts.Configure != nil {
			opts.Configure(&cfg)
		}
		if opts.StoragePlugin {
			cfg.Storage.Plugin.Mode = config.Subprocess
			cfg.Storage.Raw = plugins.SectionOf(cfg.Storage.Config)
		}
		if opts.ConsensusPlugin {
			cfg.Consensus.Plugin.Mode = config.Subprocess
			cfg.Consensus.Raw = plugins.SectionOf(cfg.Consensus.Config)
		}
		c.cfgs = append(c.cfgs, &cfg)
	}
	var wg sync.WaitGroup
	errs := make([]error, opts.Brokers)
	for i := range c.cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start broker %d: %v", i+1, err)
		}
	}
	t.Cleanup(c.Close)
	return c
}

type defaulter interface {
	DefaultConfig() component.Config
}

func mustDefault[F interface {
	component.Named
	defaulter
}](kind string, m map[component.Type]F, t component.Type) component.Config {
	f, err := component.Lookup(kind, m, t)
	if err != nil {
		panic(err)
	}
	return f.DefaultConfig()
}

func (c *Cluster) settings(i int) node.SettingsFunc {
	level := c.opts.LogLevel
	base := slog.New(slog.NewTextHandler(testWriter{c.t}, &slog.HandlerOptions{Level: level})).With("broker", i+1)
	return func(name string) component.Settings {
		return component.Settings{
			Logger:  base.With("component", name),
			DataDir: filepath.Join(c.cfgs[i].Node.DataDir, name),
		}.WithDefaults()
	}
}

// testWriter sends log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

func (c *Cluster) start(i int) error {
	n, err := node.Start(context.Background(), c.cfgs[i], c.f, c.settings(i))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.mu.Unlock()
	return nil
}

// Node returns broker i (0-based), nil if stopped.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Size is the number of brokers.
func (c *Cluster) Size() int { return len(c.cfgs) }

// Addrs are the brokers' Kafka addresses, for a client's seed list.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.cfgs))
	for i, cfg := range c.cfgs {
		out[i] = cfg.Kafka.Advertised
	}
	return out
}

// Stop shuts broker i down cleanly (leaderships handed off first).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		c.t.Errorf("stop broker %d: %v", i+1, err)
	}
}

// Kill stops broker i without handing anything off: its server and engine
// stop at once, as in a crash (the store still closes, so what it wrote
// stays).
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Kill(ctx); err != nil {
		c.t.Errorf("kill broker %d: %v", i+1, err)
	}
}

// Restart starts a stopped broker i again on its data.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.start(i); err != nil {
		c.t.Fatalf("restart broker %d: %v", i+1, err)
	}
}

// Network is the Raft link proxies (nil without Options.RaftProxies).
func (c *Cluster) Network() *netfault.Network[int32] { return c.net }

// DataDir is broker i's data directory.
func (c *Cluster) DataDir(i int) string { return c.cfgs[i].Node.DataDir }

// Close stops every broker.
func (c *Cluster) Close() {
	if c.net != nil {
		c.net.HealAll()
	}
	var wg sync.WaitGroup
	for i := range c.cfgs {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop(i) }()
	}
	wg.Wait()
	if c.net != nil {
		c.net.Close()
		c.net = nil
	}
}
