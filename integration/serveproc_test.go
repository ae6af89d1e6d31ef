package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/netfault"
)

// Environments of serveProc: where the broker runs its components.
const (
	storagePluginEnv   = "CHRONIK_STORAGE_PLUGIN_MODE=subprocess"
	consensusPluginEnv = "CHRONIK_CONSENSUS_PLUGIN_MODE=subprocess"
)

// serveProc is one `chronik serve` process on loopback ports and its own
// data directory, configured by a file and by environment variables (as
// an operator would set them); it can be started again on the same
// directory.
type serveProc struct {
	bin, cfgPath, logPath, kafka string
	env                          []string

	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	waitErr error         // cmd.Wait's error, set before exited is closed
	plugins []int         // the plugins seen, stopped at the end if still up
}

// newServeProc writes the config of a one-broker cluster on the consensus
// backend; start runs it with env (CHRONIK_* variables) added to its
// environment. The test's end stops it.
func newServeProc(t *testing.T, consensus component.Type, env ...string) *serveProc {
	t.Helper()
	return newServeProcs(t, 1, fmt.Sprintf("consensus: {type: %s}\n", consensus), env...)[0]
}

// newServeProcs writes the configs of a cluster of n brokers (node ids 1
// to n, each listing the others as peers, replication factor min(n, 3)),
// with extra appended to each file; start runs one. The test's end stops
// them.
func newServeProcs(t *testing.T, n int, extra string, env ...string) []*serveProc {
	t.Helper()
	bin, err := chronikBinary()
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netfault.FreeAddrs(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	kafka, raft := addrs[:n], addrs[n:]
	procs := make([]*serveProc, n)
	for i := range procs {
		dir := t.TempDir()
		p := &serveProc{
			bin:     bin,
			cfgPath: filepath.Join(dir, "chronik.yaml"),
			logPath: filepath.Join(dir, "chronik.log"),
			kafka:   kafka[i],
			env:     env,
		}
		var peers []string
		for j := range n {
			if j != i {
				peers = append(peers, fmt.Sprintf("{id: %d, addr: %q, kafka: %q}", j+1, raft[j], kafka[j]))
			}
		}
		cfg := fmt.Sprintf(`node: {id: %d, data_dir: %q}
cluster: {listen: %q, peers: [%s]}
protocol: {type: kafka, listen: %q}
kafka: {advertised: %q}
broker: {default_replication_factor: %d}
storage: {type: wal, segment_size: 4194304}
telemetry: {prometheus_listen: "", log_level: info}
%s`, i+1, filepath.Join(dir, "data"), raft[i], strings.Join(peers, ", "), p.kafka, p.kafka, min(n, 3), extra)
		if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.stop(t) })
		procs[i] = p
	}
	return procs
}

// start starts the broker (again) and waits until it serves Kafka.
func (p *serveProc) start(t *testing.T) {
	t.Helper()
	p.launch(t)
	p.waitServing(t)
}

// launch starts the broker process (again).
func (p *serveProc) launch(t *testing.T) {
	t.Helper()
	lf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close() // the child has its own copy
	fmt.Fprintf(lf, "---- test: start at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, "serve", "--config", p.cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	// The test's own CHRONIK_* variables are not chronik's config.
	cmd.Env = append(brokerEnvironment(), p.env...)
	// Its own process group: a ^C to the test's group does not reach it
	// (the test's end stops it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.exited, p.waitErr = cmd, make(chan struct{}), nil
	go func(exited chan struct{}) {
		p.waitErr = cmd.Wait()
		close(exited)
	}(p.exited)
}

// waitServing waits until the launched broker serves Kafka (with a
// controller elected).
func (p *serveProc) waitServing(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := pingKafka(ctx, p.kafka)
		if err == nil {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("the broker exited while starting (%v); its log ends:\n%s", p.waitErr, p.logTail())
		case <-ctx.Done():
			t.Fatalf("the broker does not serve Kafka after 30 s (%v); its log ends:\n%s", err, p.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// brokerEnvironment is this process's environment without CHRONIK_*
// variables, which chronik serve would read as config keys (and refuse
// the tests' own, such as CHRONIK_TEST_LOG).
func brokerEnvironment() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHRONIK_") {
			env = append(env, kv)
		}
	}
	return env
}

// pingKafka asks the broker for metadata and wants a controller.
func pingKafka(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if resp.ControllerID < 0 {
		return errors.New("no controller yet")
	}
	return nil
}

// plugin returns the pid of the running broker's plugin of kind (storage,
// consensus): its one child started as `chronik plugin serve KIND ...`.
func (p *serveProc) plugin(t *testing.T, kind string) int {
	t.Helper()
	pids, err := procChildren(p.cmd.Process.Pid, "plugin serve "+kind+" ")
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 {
		t.Fatalf("the broker %d has %d %s plugin processes (%v), want 1", p.cmd.Process.Pid, len(pids), kind, pids)
	}
	p.plugins = append(p.plugins, pids[0])
	return pids[0]
}

// kill SIGKILLs the broker and waits until it has exited.
func (p *serveProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	<-p.exited
}

// stop stops the broker if it still runs (SIGTERM, SIGKILL after 10 s),
// then waits up to 3 s for each plugin it started to be gone, and kills
// one that is not (only if its pid still names a plugin).
func (p *serveProc) stop(t *testing.T) {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("the broker still runs 10 s after SIGTERM; killing it")
			p.kill(t)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, pid := range p.plugins {
		for isPlugin(pid, "") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if isPlugin(pid, "") {
			t.Errorf("plugin %d still runs 3 s after its broker stopped; killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if t.Failed() {
		t.Logf("the broker's log ends:\n%s", p.logTail())
	}
}

// isPlugin reports whether pid is a live plugin process of kind (any
// kind if empty).
func isPlugin(pid int, kind string) bool {
	cmd, err := procCmdline(pid)
	return err == nil && procAlive(pid) && strings.Contains(string(cmd), strings.TrimSpace("plugin serve "+kind))
}

func (p *serveProc) logText() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *serveProc) logTail() string { return string(tail([]byte(p.logText()), 6000)) }

func (p *serveProc) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.kafka)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createProcTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
}

// readProcTopic reads every partition of topic from the start up to its
// end offset, and returns each partition's values in offset order.
func readProcTopic(t *testing.T, p *serveProc, topic string, partitions int32) map[int32][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Right after a restart the partitions may have no leader yet.
	adm := kadm.NewClient(p.client(t))
	var ends kadm.ListedOffsets
	for {
		var err error
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil && ends.Error() == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("end offsets of %s: %v %v", topic, err, ends.Error())
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := map[int32]int64{}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s-%d: %v", topic, o.Partition, o.Err)
		}
		want[o.Partition] = o.Offset
		total += o.Offset
	})
	if len(want) != int(partitions) {
		t.Fatalf("end offsets of %d partitions, want %d", len(want), partitions)
	}
	cl := p.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	got := map[int32][]string{}
	for n := int64(0); n < total; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records before the deadline", n, total)
		}
		fs.EachError(func(topic string, part int32, err error) { t.Logf("fetch %s-%d: %v", topic, part, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if int64(len(got[r.Partition])) != r.Offset {
				t.Fatalf("partition %d: record at offset %d after %d records", r.Partition, r.Offset, len(got[r.Partition]))
			}
			if r.Offset < want[r.Partition] {
				got[r.Partition] = append(got[r.Partition], string(r.Value))
				n++
			}
		})
	}
	return got
}

// ackLog is what a producer had acknowledged: each record's value at its
// partition and offset.
type ackLog struct {
	mu    sync.Mutex
	acked map[int32]map[int64]string
	n     atomic.Int64
}

func newAckLog() *ackLog { return &ackLog{acked: map[int32]map[int64]string{}} }

// add records r's acknowledgement and returns how many there are.
func (a *ackLog) add(t *testing.T, r *kgo.Record) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acked[r.Partition] == nil {
		a.acked[r.Partition] = map[int64]string{}
	}
	if old, dup := a.acked[r.Partition][r.Offset]; dup {
		t.Errorf("partition %d offset %d acknowledged twice: %s and %s", r.Partition, r.Offset, old, r.Value)
	}
	a.acked[r.Partition][r.Offset] = string(r.Value)
	return int(a.n.Add(1))
}

func (a *ackLog) len() int { return int(a.n.Load()) }

// check wants every acknowledged record in logs at its offset, and each
// partition's values in the order they were produced (so none twice).
func (a *ackLog) check(t *testing.T, logs map[int32][]string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, recs := range a.acked {
		log := logs[p]
		for off, v := range recs {
			if off >= int64(len(log)) || log[off] != v {
				got := "nothing"
				if off < int64(len(log)) {
					got = log[off]
				}
				t.Errorf("partition %d: acknowledged %s at offset %d, the log has %s", p, v, off, got)
			}
		}
	}
	for p, log := range logs {
		for i := 1; i < len(log); i++ {
			if log[i] <= log[i-1] {
				t.Errorf("partition %d: %s at offset %d after %s", p, log[i], i, log[i-1])
			}
		}
	}
}
