package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/netfault"
	wal "github.com/chronik-go/chronik/storage-wal"
)

// Cluster is a cluster under test, with the faults a schedule injects.
// Brokers are numbered 1..Size().
type Cluster interface {
	Size() int
	// KafkaAddrs are the brokers' Kafka addresses, for clients.
	KafkaAddrs() []string
	// Kill stops broker id at once (SIGKILL); Start starts it again on its
	// data.
	Kill(id int32) error
	Start(id int32) error
	// Pause freezes broker id (SIGSTOP); Resume thaws it.
	Pause(id int32) error
	Resume(id int32) error
	// PowerLoss kills broker id and then loses what its WAL had not
	// fsynced, as a power cut would; Start brings it back. It returns a
	// description of what was cut, for the log.
	PowerLoss(id int32, rng *rand.Rand) (string, error)
	// Network holds the proxies every Raft link goes through.
	Network() *netfault.Network[int32]
	// Replicas returns the replica logs of each of the topic's partitions
	// from every broker that hosts one.
	Replicas(ctx context.Context, topic string, partitions int32) (map[int32][]Replica, error)
	// Diagnose saves into dir what a stuck run is diagnosed with: each
	// running broker's replica states (leader, term, serving, the consensus
	// group's own view) and goroutine dump. It returns the replica states,
	// a line per broker, for the log.
	Diagnose(ctx context.Context, dir string) ([]string, error)
	// Close stops every broker and the network.
	Close() error
}

// ProcOptions configure a cluster of `chronik serve` processes.
type ProcOptions struct {
	// Binary is the chronik executable (see BuildBinary).
	Binary    string
	Brokers   int    // default 3
	Consensus string // etcd (default) or hashicorp
	// ConsensusMode is consensus.plugin.mode: inprocess (default) or
	// subprocess (the engine runs in a child process of each broker,
	// `chronik plugin serve consensus <type>`).
	ConsensusMode config.PluginMode
	// Storage is the store type: wal (default) or pebble (an external
	// plugin: StorageMode must be subprocess and PluginsDir must hold
	// chronik-storage-pebble).
	Storage string
	// StorageMode is storage.plugin.mode: inprocess (default) or
	// subprocess (the store runs in a child process of each broker).
	StorageMode config.PluginMode
	// PluginsDir is plugins.dir, where external plugins are found.
	PluginsDir string
	// Dir holds each broker's config, data and log (broker-N.yaml,
	// broker-N/, broker-N.log).
	Dir string
	// Config is extra YAML appended to every broker's config file.
	Config string
	Logf   func(format string, args ...any)
}

// ProcCluster runs each broker as a separate `chronik serve` process on
// loopback, with every Raft link through a netfault proxy (clients connect
// directly, so a partition on the Raft links leaves them connected).
type ProcCluster struct {
	opts    ProcOptions
	net     *netfault.Network[int32]
	brokers []*procBroker
}

type procBroker struct {
	id                    int32
	cfgPath, dir, logPath string
	kafka, raft, metrics  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	// exitErr is how cmd exited (cmd.Wait's error), set before exited is
	// closed.
	exitErr error
	paused  bool
}

// BuildBinary builds the chronik command into dir and returns its path.
// It must run inside the chronik workspace (or a module that requires the
// cmd module).
func BuildBinary(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "chronik")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/chronik-go/chronik/cmd/chronik")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build chronik: %v\n%s", err, b)
	}
	return out, nil
}

// StartProc writes the brokers' configs, starts them and waits until each
// answers on its Kafka port and the cluster has a controller.
func StartProc(ctx context.Context, opts ProcOptions) (*ProcCluster, error) {
	if opts.Brokers == 0 {
		opts.Brokers = 3
	}
	if opts.Consensus == "" {
		opts.Consensus = "etcd"
	}
	if opts.Storage == "" {
		opts.Storage = StorageWAL
	}
	if opts.StorageMode == "" {
		opts.StorageMode = config.InProcess
	}
	if opts.ConsensusMode == "" {
		opts.ConsensusMode = config.InProcess
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	// The Raft ports first, then the proxies (which hold their ports from
	// now on), then the rest: no proxy can take a port meant for a broker.
	raftPorts, err := netfault.FreeAddrs(opts.Brokers)
	if err != nil {
		return nil, err
	}
	c := &ProcCluster{opts: opts}
	targets := map[int32]string{}
	for i, a := range raftPorts {
		targets[int32(i+1)] = a
	}
	if c.net, err = netfault.NewNetwork(targets); err != nil {
		return nil, err
	}
	ports, err := netfault.FreeAddrs(2 * opts.Brokers)
	if err != nil {
		c.net.Close()
		return nil, err
	}
	for i := range opts.Brokers {
		id := int32(i + 1)
		c.brokers = append(c.brokers, &procBroker{
			id:      id,
			cfgPath: filepath.Join(opts.Dir, fmt.Sprintf("broker-%d.yaml", id)),
			dir:     filepath.Join(opts.Dir, fmt.Sprintf("broker-%d", id)),
			logPath: filepath.Join(opts.Dir, fmt.Sprintf("broker-%d.log", id)),
			kafka:   ports[2*i],
			raft:    raftPorts[i],
			metrics: ports[2*i+1],
		})
	}
	for _, b := range c.brokers {
		if err := os.WriteFile(b.cfgPath, []byte(c.config(b)), 0o644); err != nil {
			c.net.Close()
			return nil, err
		}
	}
	for _, b := range c.brokers {
		if err := c.Start(b.id); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.waitReady(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// config is broker b's config file: the Raft address of each peer is b's
// own proxy to that peer.
func (c *ProcCluster) config(b *procBroker) string {
	var s strings.Builder
	fmt.Fprintf(&s, "node: {id: %d, data_dir: %q}\n", b.id, b.dir)
	fmt.Fprintf(&s, "cluster:\n  id: chaos\n  listen: %s\n  peers:\n", b.raft)
	for _, p := range c.brokers {
		if p != b {
			fmt.Fprintf(&s, "    - {id: %d, addr: %q, kafka: %q}\n", p.id, c.net.Addr(b.id, p.id), p.kafka)
		}
	}
	fmt.Fprintf(&s, "protocol: {type: kafka, listen: %q}\n", b.kafka)
	fmt.Fprintf(&s, "kafka: {advertised: %q}\n", b.kafka)
	fmt.Fprintf(&s, "broker: {default_replication_factor: %d, balance_interval: 1s}\n", min(3, len(c.brokers)))
	plugin := pluginKey(c.opts.StorageMode)
	switch c.opts.Storage {
	case StorageWAL:
		// Small segments: rolls, seals and recycling happen within a run.
		fmt.Fprintf(&s, "storage: {type: wal, fsync: always, segment_size: 4194304, sync_marks: true%s}\n", plugin)
	case StoragePebble:
		// Small memtables: flushes and compactions happen within a run.
		fmt.Fprintf(&s, "storage: {type: pebble, memtable_size: 4194304%s}\n", plugin)
	default:
		fmt.Fprintf(&s, "storage: {type: %s%s}\n", c.opts.Storage, plugin)
	}
	if c.opts.PluginsDir != "" {
		fmt.Fprintf(&s, "plugins: {dir: %q}\n", c.opts.PluginsDir)
	}
	fmt.Fprintf(&s, "consensus: {type: %s%s}\n", c.opts.Consensus, pluginKey(c.opts.ConsensusMode))
	fmt.Fprintf(&s, "telemetry: {prometheus_listen: %q, debug: true, log_level: info}\n", b.metrics)
	if c.opts.Config != "" {
		s.WriteString(c.opts.Config)
		s.WriteString("\n")
	}
	return s.String()
}

// pluginKey is the plugin key of a component section in mode, after a
// comma ("" for the default, in process).
func pluginKey(mode config.PluginMode) string {
	if mode == config.InProcess {
		return ""
	}
	return fmt.Sprintf(", plugin: {mode: %s}", mode)
}

func (c *ProcCluster) broker(id int32) (*procBroker, error) {
	if id < 1 || int(id) > len(c.brokers) {
		return nil, fmt.Errorf("chaos: no broker %d", id)
	}
	return c.brokers[id-1], nil
}

// Size is the number of brokers.
func (c *ProcCluster) Size() int { return len(c.brokers) }

// KafkaAddrs are the brokers' Kafka addresses.
func (c *ProcCluster) KafkaAddrs() []string {
	out := make([]string, len(c.brokers))
	for i, b := range c.brokers {
		out[i] = b.kafka
	}
	return out
}

// Network holds the Raft link proxies.
func (c *ProcCluster) Network() *netfault.Network[int32] { return c.net }

// LogPath is broker id's log file.
func (c *ProcCluster) LogPath(id int32) string {
	b, err := c.broker(id)
	if err != nil {
		return ""
	}
	return b.logPath
}

// Start starts broker id's process (again).
func (c *ProcCluster) Start(id int32) error {
	b, err := c.broker(id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return fmt.Errorf("chaos: broker %d is running", id)
	}
	lf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "---- chaos: start broker %d at %s\n", id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.opts.Binary, "serve", "--config", b.cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = brokerEnv()
	// Its own process group, so that a signal to the test's group (^C)
	// does not reach it before Close does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("chaos: start broker %d: %w", id, err)
	}
	b.cmd, b.exited, b.exitErr, b.paused = cmd, make(chan struct{}), nil, false
	go func(exited chan struct{}) {
		err := cmd.Wait()
		fmt.Fprintf(lf, "---- chaos: broker %d exited at %s: %v\n", id, time.Now().Format(time.RFC3339Nano), err)
		lf.Close()
		b.exitErr = err
		close(exited)
	}(b.exited)
	return nil
}

// brokerEnv is this process's environment without CHRONIK_* variables: a
// broker's config file is all of its configuration (chronik serve reads
// CHRONIK_* as config keys and refuses unknown ones, such as the tests'
// CHRONIK_CHAOS_SEED).
func brokerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHRONIK_") {
			env = append(env, kv)
		}
	}
	return env
}

// signal sends sig to broker id's process and, for SIGKILL, waits until it
// has exited.
func (c *ProcCluster) signal(id int32, sig syscall.Signal) error {
	b, err := c.broker(id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return fmt.Errorf("chaos: broker %d is not running", id)
	}
	if err := b.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("chaos: signal %v to broker %d: %w", sig, id, err)
	}
	switch sig {
	case syscall.SIGKILL:
		<-b.exited
		b.cmd, b.paused = nil, false
	case syscall.SIGSTOP:
		b.paused = true
	case syscall.SIGCONT:
		b.paused = false
	}
	return nil
}

// Kill SIGKILLs broker id and waits for it to exit. Its plugin processes
// outlive it briefly: each notices that its broker is gone, closes its
// store or stops its engine, and exits. Kill waits for that too (up to
// pluginExitLimit), so that a restarted broker finds its data directory
// unlocked.
func (c *ProcCluster) Kill(id int32) error {
	pid := c.pid(id)
	if err := c.signal(id, syscall.SIGKILL); err != nil {
		return err
	}
	return c.waitPluginsGone(id, pid)
}

// Pause SIGSTOPs broker id.
func (c *ProcCluster) Pause(id int32) error { return c.signal(id, syscall.SIGSTOP) }

// Resume SIGCONTs broker id.
func (c *ProcCluster) Resume(id int32) error { return c.signal(id, syscall.SIGCONT) }

// PowerLoss SIGKILLs broker id, then drops what its WAL had not fsynced
// (wal.SimulatePowerLoss, from the sync marks the brokers are configured
// to write). Its plugin processes are killed in the same instant (the
// broker's process group), as a power cut would: left alone, a storage
// plugin would close its store, syncing what the cut must lose.
func (c *ProcCluster) PowerLoss(id int32, rng *rand.Rand) (string, error) {
	if c.opts.Storage != StorageWAL {
		return "", fmt.Errorf("chaos: powerloss simulates a WAL's unsynced writes; broker %d's storage is %s", id, c.opts.Storage)
	}
	pid := c.pid(id)
	var err error
	if len(c.Plugins()) > 0 {
		err = c.killGroup(id)
	} else {
		err = c.signal(id, syscall.SIGKILL)
	}
	if err != nil {
		return "", err
	}
	if err := c.waitPluginsGone(id, pid); err != nil {
		return "", err
	}
	b, _ := c.broker(id)
	pl, err := wal.SimulatePowerLoss(filepath.Join(b.dir, "storage"), rng)
	if err != nil {
		return "", fmt.Errorf("chaos: power loss on broker %d: %w", id, err)
	}
	return pl.String(), nil
}

// Running reports whether broker id's process is up (paused counts).
func (c *ProcCluster) Running(id int32) bool {
	b, err := c.broker(id)
	if err != nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// waitReady waits until every running broker answers on its Kafka port and
// reports a controller.
func (c *ProcCluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, b := range c.brokers {
		for {
			err := ping(ctx, b.kafka)
			if err == nil {
				break
			}
			if !c.Running(b.id) || ctx.Err() != nil {
				log, _ := os.ReadFile(b.logPath)
				if len(log) > 2000 {
					log = log[len(log)-2000:]
				}
				return fmt.Errorf("chaos: broker %d not ready: %v; its log %s ends:\n%s", b.id, err, b.logPath, log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// ping asks one broker for metadata and wants a controller in the answer.
func ping(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if resp.ControllerID < 0 {
		return errors.New("no controller yet")
	}
	return nil
}

// Replicas reads every broker's replica of each partition over the
// brokers' debug endpoint.
func (c *ProcCluster) Replicas(ctx context.Context, topic string, partitions int32) (map[int32][]Replica, error) {
	out := map[int32][]Replica{}
	for _, b := range c.brokers {
		for p := range partitions {
			r, err := fetchReplica(ctx, b.metrics, b.id, topic, p)
			if err != nil {
				return nil, err
			}
			if r != nil {
				out[p] = append(out[p], *r)
			}
		}
	}
	return out, nil
}

// fetchReplica gets one replica from a broker's debug endpoint; nil when
// the broker does not host it.
func fetchReplica(ctx context.Context, metrics string, id int32, topic string, p int32) (*Replica, error) {
	u := fmt.Sprintf("http://%s/debug/chronik/replica?topic=%s&partition=%d", metrics, url.QueryEscape(topic), p)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("chaos: replica %s-%d of broker %d: %w", topic, p, id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, nil
	default:
		return nil, fmt.Errorf("chaos: replica %s-%d of broker %d: %s: %s", topic, p, id, resp.Status, body)
	}
	h := func(k string) int64 {
		v, _ := strconv.ParseInt(resp.Header.Get(k), 10, 64)
		return v
	}
	return &Replica{
		Broker:    id,
		Partition: p,
		Leader:    int32(h("Chronik-Leader")),
		Term:      uint64(h("Chronik-Term")),
		Start:     h("Chronik-Start-Offset"),
		Next:      h("Chronik-Next-Offset"),
		Bytes:     body,
	}, nil
}

// Diagnose saves each running broker's replica states and goroutine dump
// (debug endpoints) as broker-N.replicas.json and broker-N.goroutines.txt.
func (c *ProcCluster) Diagnose(ctx context.Context, dir string) ([]string, error) {
	var lines []string
	var errs []error
	for _, b := range c.brokers {
		b.mu.Lock()
		paused := b.paused
		b.mu.Unlock()
		if paused || !c.Running(b.id) {
			lines = append(lines, fmt.Sprintf("broker %d: not running", b.id))
			continue
		}
		for _, d := range []struct{ path, file string }{
			{"/debug/chronik/replicas", "replicas.json"},
			{"/debug/pprof/goroutine?debug=2", "goroutines.txt"},
		} {
			body, err := httpGet(ctx, "http://"+b.metrics+d.path)
			if err != nil {
				errs = append(errs, fmt.Errorf("broker %d: %w", b.id, err))
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("broker-%d.%s", b.id, d.file)), body, 0o644); err != nil {
				errs = append(errs, err)
			}
			if d.file == "replicas.json" {
				lines = append(lines, fmt.Sprintf("broker %d: %s", b.id, bytes.TrimSpace(body)))
			}
		}
	}
	return lines, errors.Join(errs...)
}

func httpGet(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return body, nil
}

// Close resumes paused brokers, heals the network, stops every broker
// (SIGTERM, then SIGKILL after 15 s), waits for their plugin processes
// to end, and closes the proxies.
func (c *ProcCluster) Close() error {
	var wg sync.WaitGroup
	for _, b := range c.brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid := c.pid(b.id)
			defer func() { _ = c.waitPluginsGone(b.id, pid) }()
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.cmd == nil {
				return
			}
			if b.paused {
				_ = b.cmd.Process.Signal(syscall.SIGCONT)
			}
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-b.exited:
			case <-time.After(15 * time.Second):
				_ = b.cmd.Process.Kill()
				<-b.exited
			}
			b.cmd = nil
		}()
	}
	c.net.HealAll()
	wg.Wait()
	return c.net.Close()
}
