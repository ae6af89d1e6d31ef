package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/netfault"
	"github.com/chronik-go/chronik/integration/chaos"
	wal "github.com/chronik-go/chronik/storage-wal"
)

// inprocChaos is a chaos.Cluster of in-process brokers (Cluster with Raft
// proxies). A pause cannot freeze a goroutine set, so it is not offered.
type inprocChaos struct {
	c *Cluster
}

func newInprocChaos(t testing.TB, backend string) *inprocChaos {
	c := StartCluster(t, Options{
		Brokers: 3, Consensus: component.Type(backend), RaftProxies: true,
		Configure: func(cfg *config.Config) {
			if wc, ok := cfg.Storage.Config.(*wal.Config); ok {
				wc.SyncMarks = true
				wc.SegmentSize = 1 << 20
			}
		},
	})
	return &inprocChaos{c: c}
}

func (p *inprocChaos) Size() int                         { return p.c.Size() }
func (p *inprocChaos) KafkaAddrs() []string              { return p.c.Addrs() }
func (p *inprocChaos) Network() *netfault.Network[int32] { return p.c.Network() }
func (p *inprocChaos) Kill(id int32) error               { p.c.Kill(int(id - 1)); return nil }
func (p *inprocChaos) Pause(int32) error                 { return errors.ErrUnsupported }
func (p *inprocChaos) Resume(int32) error                { return errors.ErrUnsupported }
func (p *inprocChaos) Close() error                      { p.c.Close(); return nil }
func (p *inprocChaos) Start(id int32) error {
	if err := p.c.start(int(id - 1)); err != nil {
		return fmt.Errorf("restart broker %d: %w", id, err)
	}
	return nil
}

// PowerLoss kills the broker (its store closes, syncing what it wrote:
// in-process, the marks are what the store knew synced before that) and
// cuts its WAL back.
func (p *inprocChaos) PowerLoss(id int32, rng *rand.Rand) (string, error) {
	p.c.Kill(int(id - 1))
	pl, err := wal.SimulatePowerLoss(filepath.Join(p.c.DataDir(int(id-1)), "storage"), rng)
	if err != nil {
		return "", err
	}
	return pl.String(), nil
}

func (p *inprocChaos) Replicas(_ context.Context, topic string, partitions int32) (map[int32][]chaos.Replica, error) {
	out := map[int32][]chaos.Replica{}
	for i := range p.c.Size() {
		n := p.c.Node(i)
		if n == nil {
			continue
		}
		for part := range partitions {
			b, st, err := n.Broker.ReplicaRecords(topic, part)
			if err != nil {
				continue
			}
			out[part] = append(out[part], chaos.Replica{
				Broker: int32(i + 1), Partition: part, Leader: int32(st.Leader), Term: st.Term,
				Start: st.StartOffset, Next: st.NextOffset, Bytes: b,
			})
		}
	}
	return out, nil
}

// Diagnose saves the process's goroutine dump (the brokers share it) and
// each running broker's replica states.
func (p *inprocChaos) Diagnose(_ context.Context, dir string) ([]string, error) {
	var lines []string
	for i := range p.c.Size() {
		n := p.c.Node(i)
		if n == nil {
			lines = append(lines, fmt.Sprintf("broker %d: not running", i+1))
			continue
		}
		hosted, err := n.Broker.HostedReplicas()
		if err != nil {
			return lines, err
		}
		b, err := json.Marshal(hosted)
		if err != nil {
			return lines, err
		}
		lines = append(lines, fmt.Sprintf("broker %d: %s", i+1, b))
	}
	f, err := os.Create(filepath.Join(dir, "goroutines.txt"))
	if err != nil {
		return lines, err
	}
	defer f.Close()
	return lines, pprof.Lookup("goroutine").WriteTo(f, 2)
}

// chaosKinds is CHRONIK_CHAOS_FAULTS (comma-separated fault kinds), to
// replay or stress one kind, or def.
func chaosKinds(def ...string) []string {
	if v := os.Getenv("CHRONIK_CHAOS_FAULTS"); v != "" {
		return strings.Split(v, ",")
	}
	return def
}

// chaosSeed is CHRONIK_CHAOS_SEED, to replay a failed run, or a new seed.
func chaosSeed(t testing.TB) uint64 {
	if v := os.Getenv("CHRONIK_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHRONIK_CHAOS_SEED: %v", err)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

func checkChaos(t *testing.T, res *chaos.Result) {
	t.Helper()
	sum := chaos.Summarize(res)
	t.Logf("%s: %d cycles: %s\n%s", sum.Pairing, res.Cycles, res.Steps, chaos.Markdown([]chaos.Summary{sum}))
	for _, e := range res.Errors {
		t.Errorf("harness: %s", e)
	}
	if !res.Report.OK() {
		t.Errorf("anomalies (replay with CHRONIK_CHAOS_SEED=%d):\n%s", res.Seed, res.Report.String())
	}
	if res.Cycles == 0 || res.Report.Sends.OK == 0 {
		t.Errorf("the run proves nothing: %d cycles, %d acknowledged sends", res.Cycles, res.Report.Sends.OK)
	}
}

// TestChaosInProcess runs a few fault cycles against in-process brokers:
// kills, Raft-link partitions and power losses.
func TestChaosInProcess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, consensus component.Type) {
		seed := chaosSeed(t)
		kinds := chaosKinds(chaos.KindKill, chaos.KindPartition, chaos.KindPowerLoss, chaos.KindLatency)
		if slices.Contains(kinds, chaos.KindPluginKill) {
			t.Skip("plugin-kill needs the storage run as a subprocess")
		}
		res, err := chaos.Run(context.Background(), chaos.RunOptions{
			Backend: string(consensus), Seed: seed, Cycles: 4,
			Kinds:  kinds,
			MinFor: time.Second, MaxFor: 2 * time.Second,
			NewCluster: func(context.Context, string) (chaos.Cluster, error) {
				return newInprocChaos(t, string(consensus)), nil
			},
			Logf: t.Logf,
		})
		if err != nil {
			t.Fatal(err)
		}
		checkChaos(t, res)
	})
}

var chronikBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "chronik-bin-")
	if err != nil {
		return "", err
	}
	return chaos.BuildBinary(context.Background(), dir)
})

// TestChaosProcesses is the short version of `chronik verify`: a cluster
// of chronik serve processes per backend, the fault kinds of the long
// run, the same seed; then, with kills of the broker and of its plugin
// process, etcd with the storage run as a plugin subprocess and
// hashicorp with the consensus engine run as one.
func TestChaosProcesses(t *testing.T) {
	bin, err := chronikBinary()
	if err != nil {
		t.Fatal(err)
	}
	seed := chaosSeed(t)
	var sums []chaos.Summary
	forEachBackend(t, func(t *testing.T, consensus component.Type) {
		sums = append(sums, runChaosProcesses(t, chaos.RunOptions{
			Backend: string(consensus), Seed: seed, Cycles: 5,
			Kinds:  chaosKinds(chaos.KindKill, chaos.KindPause, chaos.KindPartition, chaos.KindPowerLoss, chaos.KindLatency),
			Binary: bin,
		}))
	})
	t.Run("etcd-storage-plugin", func(t *testing.T) {
		sums = append(sums, runChaosProcesses(t, chaos.RunOptions{
			Backend: "etcd", StorageMode: config.Subprocess, Seed: seed, Cycles: 4,
			Kinds:  chaosKinds(chaos.KindKill, chaos.KindPluginKill),
			Binary: bin,
		}))
	})
	t.Run("hashicorp-consensus-plugin", func(t *testing.T) {
		sums = append(sums, runChaosProcesses(t, chaos.RunOptions{
			Backend: "hashicorp", ConsensusMode: config.Subprocess, Seed: seed, Cycles: 4,
			Kinds:  chaosKinds(chaos.KindKill, chaos.KindPluginKill),
			Binary: bin,
		}))
	})
	t.Logf("seed %d\n%s", seed, chaos.Markdown(sums))
}

// runChaosProcesses runs o on a cluster of processes in a temporary
// directory, checks it, and logs the brokers' logs if it failed.
func runChaosProcesses(t *testing.T, o chaos.RunOptions) chaos.Summary {
	t.Helper()
	if o.StorageMode != config.Subprocess && o.ConsensusMode != config.Subprocess && slices.Contains(o.Kinds, chaos.KindPluginKill) {
		t.Skip("plugin-kill needs the storage or the consensus engine run as a subprocess")
	}
	o.Dir, o.Logf = t.TempDir(), t.Logf
	res, err := chaos.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkChaos(t, res)
	if t.Failed() {
		for i := 1; i <= 3; i++ {
			if b, err := os.ReadFile(filepath.Join(res.Dir, fmt.Sprintf("broker-%d.log", i))); err == nil && len(b) > 0 {
				t.Logf("broker-%d.log (tail):\n%s", i, tail(b, 4000))
			}
		}
	}
	return chaos.Summarize(res)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
