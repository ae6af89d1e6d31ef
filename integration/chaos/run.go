package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/config"
)

// Storage types a run can use.
const (
	StorageWAL    = "wal"    // built in, with sync marks (powerloss)
	StoragePebble = "pebble" // the example plugin, chronik-storage-pebble
)

// RunOptions configure one run: one backend, one seeded fault schedule.
type RunOptions struct {
	Backend string // consensus backend: etcd or hashicorp
	// ConsensusMode says where a cluster of processes runs the consensus
	// engine (see ProcOptions): in the broker process (default) or as a
	// plugin subprocess.
	ConsensusMode config.PluginMode
	// Storage, StorageMode and PluginsDir say how a cluster of processes
	// stores its logs (see ProcOptions): wal (default) or pebble, in the
	// broker process (default) or as a plugin subprocess.
	Storage     string
	StorageMode config.PluginMode
	PluginsDir  string
	// Label names the run in the log (default: its PairingName).
	Label string
	Seed  uint64
	// Cycles is the number of faults to inject; Duration, when set, ends
	// the run early once it has passed (the faults still heal). With
	// Cycles 0 the run injects faults until Duration.
	Cycles     int
	Duration   time.Duration
	Kinds      []string // default DefaultKinds
	Brokers    int      // default 3
	Partitions int32    // default 6
	// Settle is the quiet time after a fault ends and every partition has
	// a leader again, before the next fault (default 1s).
	Settle time.Duration
	// MinFor and MaxFor bound a fault's length (see ScheduleOptions).
	MinFor, MaxFor time.Duration
	Workload       WorkloadOptions // Addrs, Topic and Partitions are set by Run
	// Binary and Dir are for a cluster of processes (StartProc); Dir keeps
	// the brokers' logs and data after the run.
	Binary string
	Dir    string
	// NewCluster, when set, starts the cluster instead (for example
	// in-process); Binary is then unused.
	NewCluster func(ctx context.Context, backend string) (Cluster, error)
	Logf       func(format string, args ...any)
}

// Result is what one run found.
type Result struct {
	Backend       string
	ConsensusMode config.PluginMode
	Storage       string
	StorageMode   config.PluginMode
	Seed          uint64
	Cycles        int      // faults injected and healed
	Steps         []string // the faults, as injected
	Report        Report
	Stats         Stats
	// Errors are failures of the harness itself (a broker that would not
	// restart, a drain that did not finish): the run proves nothing then.
	Errors []string
	Dir    string
}

// OK reports whether the run completed without anomalies.
func (r *Result) OK() bool { return len(r.Errors) == 0 && r.Report.OK() && r.Cycles > 0 }

const topic = "chaos"

// Run starts a cluster, runs the workload while injecting the schedule's
// faults one at a time, heals everything, drains and checks the history.
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	if o.Brokers == 0 {
		o.Brokers = 3
	}
	if o.Partitions == 0 {
		o.Partitions = 6
	}
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Storage == "" {
		o.Storage = StorageWAL
	}
	if o.StorageMode == "" {
		o.StorageMode = config.InProcess
	}
	if o.ConsensusMode == "" {
		o.ConsensusMode = config.InProcess
	}
	if o.Label == "" {
		o.Label = PairingName(o.Backend, o.ConsensusMode, o.Storage, o.StorageMode)
	}
	if err := checkKinds(o); err != nil {
		return nil, err
	}
	cycles := o.Cycles
	if cycles == 0 {
		if o.Duration == 0 {
			return nil, errors.New("chaos: a run needs cycles or a duration")
		}
		cycles = 100000
	}
	steps, err := NewSchedule(ScheduleOptions{
		Seed: o.Seed, Kinds: o.Kinds, Brokers: o.Brokers, Partitions: o.Partitions,
		Cycles: cycles, MinFor: o.MinFor, MaxFor: o.MaxFor,
	})
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) { o.Logf("[%s] "+format, append([]any{o.Label}, args...)...) }

	var c Cluster
	if o.NewCluster != nil {
		c, err = o.NewCluster(ctx, o.Backend)
	} else {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, err
		}
		c, err = StartProc(ctx, ProcOptions{
			Binary: o.Binary, Brokers: o.Brokers, Consensus: o.Backend, ConsensusMode: o.ConsensusMode,
			Storage: o.Storage, StorageMode: o.StorageMode, PluginsDir: o.PluginsDir,
			Dir: o.Dir, Logf: logf,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("chaos: start %s cluster: %w", o.Label, err)
	}
	defer c.Close()
	if _, ok := c.(PluginKiller); !ok && slices.Contains(o.Kinds, KindPluginKill) {
		return nil, fmt.Errorf("chaos: fault %s: the %s cluster cannot kill a plugin process", KindPluginKill, o.Label)
	}
	res := &Result{
		Backend: o.Backend, ConsensusMode: o.ConsensusMode, Storage: o.Storage, StorageMode: o.StorageMode,
		Seed: o.Seed, Dir: o.Dir,
	}
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		logf("ERROR %s", msg)
		res.Errors = append(res.Errors, msg)
	}

	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaAddrs()...), kgo.RequestTimeoutOverhead(2*time.Second))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := createTopic(ctx, adm, o.Partitions, int16(min(3, o.Brokers))); err != nil {
		return nil, err
	}
	if _, err := waitLeaders(ctx, adm, o.Partitions, 60*time.Second); err != nil {
		return nil, err
	}
	epochs0 := allEpochs(ctx, adm, o.Partitions)

	wo := o.Workload
	wo.Addrs, wo.Topic, wo.Partitions = c.KafkaAddrs(), topic, o.Partitions
	if wo.Logf == nil {
		wo.Logf = logf
	}
	w, err := StartWorkload(ctx, wo)
	if err != nil {
		return nil, err
	}
	h := &History{Topic: topic, Partitions: o.Partitions}
	start := time.Now()
	sleep(ctx, 2*time.Second) // a fault-free start

	for i, s := range steps {
		if ctx.Err() != nil || o.Duration > 0 && time.Since(start) >= o.Duration {
			break
		}
		forced := func(format string, args ...any) { fail("cycle %d (%s): "+format, append([]any{i + 1, s}, args...)...) }
		f, err := inject(ctx, c, adm, admCl, s, rand.New(rand.NewPCG(o.Seed, uint64(i))), logf, forced)
		if err != nil {
			fail("cycle %d (%s): %v", i+1, s, err)
			break
		}
		h.Faults = append(h.Faults, f)
		res.Steps = append(res.Steps, f.Kind+" "+f.Detail)
		res.Cycles++
		if _, err := waitLeaders(ctx, adm, o.Partitions, 60*time.Second); err != nil {
			fail("cycle %d (%s): no recovery: %v", i+1, s, err)
			diagnose(ctx, c, o.Dir, logf)
			break
		}
		if down := downBrokers(c); len(down) > 0 {
			fail("cycle %d (%s): after the fault, %s", i+1, s, strings.Join(down, "; "))
			break
		}
		st := w.Stats()
		logf("cycle %d/%d %s %s: %d ok, %d failed, %d unknown so far", i+1, len(steps), f.Kind, f.Detail, st.OK, st.Failed, st.Unknown)
		sleep(ctx, o.Settle)
	}
	// Heal whatever may be left and run fault-free for a moment.
	c.Network().HealAll()
	c.Network().SetDelay(0)
	sleep(ctx, 2*time.Second)
	w.Stop()

	dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	h.Drain, err = w.Drain(dctx)
	cancel()
	if err != nil {
		fail("drain: %v", err)
		diagnose(ctx, c, o.Dir, logf)
	}
	w.Fill(h)
	epochs1 := allEpochs(ctx, adm, o.Partitions)
	for p, e := range epochs1 {
		if e0, ok := epochs0[p]; ok && e > e0 {
			h.Elections += int64(e - e0)
		}
	}
	if len(epochs0) != int(o.Partitions) || len(epochs1) != int(o.Partitions) {
		logf("leader epochs of %d and %d of %d partitions known at the start and end: elections undercounted", len(epochs0), len(epochs1), o.Partitions)
	}
	if h.Replicas, err = caughtUpReplicas(ctx, c, o.Partitions, 90*time.Second); err != nil {
		fail("replicas: %v", err)
	}
	res.Report = Check(h)
	res.Stats = ComputeStats(h)
	for _, d := range FailoverDetails(h) {
		logf("%s", d)
	}
	if o.Dir != "" {
		if err := writeHistorySummary(filepath.Join(o.Dir, "anomalies.txt"), res); err != nil {
			logf("write summary: %v", err)
		}
	}
	return res, nil
}

// downBrokers describes the brokers of c whose process has exited, with
// the last line of their log (a cluster that cannot tell: none). Every
// broker runs once a fault has ended: one that is down failed to restart.
func downBrokers(c Cluster) []string {
	pc, ok := c.(*ProcCluster)
	if !ok {
		return nil
	}
	var out []string
	for id := int32(1); id <= int32(pc.Size()); id++ {
		if pc.Running(id) {
			continue
		}
		last := "?"
		if b, err := os.ReadFile(pc.LogPath(id)); err == nil {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			// The harness's own exit line is last; the broker's is before it.
			if n := len(lines); n >= 2 {
				last = lines[n-2]
			}
		}
		out = append(out, fmt.Sprintf("broker %d is down (%s ends: %s)", id, pc.LogPath(id), last))
	}
	return out
}

// checkKinds refuses the fault kinds o's cluster cannot take, and a
// storage that cannot run in o's storage mode.
func checkKinds(o RunOptions) error {
	if o.Storage != StorageWAL && o.Storage != "memory" && o.StorageMode != config.Subprocess {
		return fmt.Errorf("chaos: storage %s is an external plugin: it runs only as a subprocess (storage.plugin.mode: %s)", o.Storage, config.Subprocess)
	}
	for _, k := range o.Kinds {
		switch {
		case k == KindPluginKill && o.StorageMode != config.Subprocess && o.ConsensusMode != config.Subprocess:
			return fmt.Errorf("chaos: fault %s kills a broker's plugin process: it needs the storage or the consensus engine run as a subprocess (storage.plugin.mode or consensus.plugin.mode: %s); both run in process", k, config.Subprocess)
		case k == KindPowerLoss && o.Storage != StorageWAL:
			return fmt.Errorf("chaos: fault %s cuts what a WAL had not fsynced (from its sync marks): it needs storage %s, not %s", k, StorageWAL, o.Storage)
		}
	}
	return nil
}

// inject applies one step and undoes it after s.For. A ForcedError of
// the cluster goes to forced, and the step goes on. rng is the step's own
// generator: a plugin-kill draws from it which of the cluster's plugins
// it kills, a power loss what it cuts.
func inject(ctx context.Context, c Cluster, adm *kadm.Client, cl *kgo.Client, s Step, rng *rand.Rand, logf, forced func(string, ...any)) (Fault, error) {
	var plugin string
	if s.Kind == KindPluginKill {
		// The plugin to kill is the step generator's first draw, so that
		// it depends on the seed and the step alone.
		pk, ok := c.(PluginKiller)
		if !ok || len(pk.Plugins()) == 0 {
			return Fault{Kind: s.Kind}, errors.New("the cluster runs no plugin process to kill")
		}
		plugins := pk.Plugins()
		plugin = plugins[rng.IntN(len(plugins))]
	}
	brokers := slices.Clone(s.Brokers)
	if s.Leader {
		lead, _ := leaderMap(ctx, adm)
		l, ok := lead[s.Partition]
		if !ok || l < 1 {
			l = int32(rng.IntN(c.Size()) + 1)
		}
		brokers = []int32{l}
	}
	// What the victims lead, as a broker that is not one of them sees it
	// (the same broker watchElection asks).
	lead, _ := leaderMapFrom(ctx, cl, bystander(c.Size(), brokers))
	f := Fault{Kind: s.Kind, Brokers: brokers, Plugin: plugin}
	var undo func() error
	switch s.Kind {
	case KindKill, KindPause, KindPowerLoss, KindPluginKill:
		id := brokers[0]
		f.Detail = fmt.Sprintf("broker %d for %v", id, s.For.Round(time.Millisecond))
		for p, l := range lead {
			if l == id {
				f.Led = append(f.Led, p)
			}
		}
		slices.Sort(f.Led)
		f.Start = time.Now()
		var err error
		switch s.Kind {
		case KindKill:
			err = c.Kill(id)
			undo = func() error { return c.Start(id) }
		case KindPause:
			err = c.Pause(id)
			undo = func() error { return c.Resume(id) }
		case KindPowerLoss:
			var what string
			what, err = c.PowerLoss(id, rng)
			if err == nil {
				logf("power loss on broker %d: %s", id, what)
			}
			undo = func() error { return c.Start(id) }
		case KindPluginKill:
			f.Detail = fmt.Sprintf("%s plugin of broker %d for %v", f.Plugin, id, s.For.Round(time.Millisecond))
			var k PluginKill
			k, err = c.(PluginKiller).KillPlugin(id, f.Plugin)
			if !k.At.IsZero() {
				f.Start = k.At // not the look-up of the plugin before it
			}
			if f.Exit = k.Exit; k.Exit != "" {
				logf("broker %d: %s", id, k)
			}
			undo = func() error { return c.Start(id) }
		}
		var fe *ForcedError
		if errors.As(err, &fe) {
			forced("%s %s: %v", f.Kind, f.Detail, fe.Err)
		} else if err != nil {
			return f, err
		}
	case KindPartition:
		n := c.Network()
		switch s.Variant {
		case PartIsolate:
			n.Isolate(brokers[0])
			f.Detail = fmt.Sprintf("isolate broker %d for %v", brokers[0], s.For.Round(time.Millisecond))
			for p, l := range lead {
				if l == brokers[0] {
					f.Led = append(f.Led, p)
				}
			}
			slices.Sort(f.Led)
		case PartBridge:
			n.Partition([]int32{brokers[0]}, []int32{brokers[1]})
			f.Detail = fmt.Sprintf("bridge: %d | %d, both reach the rest, for %v", brokers[0], brokers[1], s.For.Round(time.Millisecond))
		case PartOneWay:
			n.PartitionOneWay(brokers[0], brokers[1])
			f.Detail = fmt.Sprintf("one-way %d -> %d cut for %v", brokers[0], brokers[1], s.For.Round(time.Millisecond))
		}
		f.Start = time.Now()
		undo = func() error { n.HealAll(); return nil }
	case KindLatency:
		c.Network().SetDelay(s.Delay)
		f.Detail = fmt.Sprintf("%v on every Raft link for %v", s.Delay, s.For.Round(time.Millisecond))
		f.Start = time.Now()
		undo = func() error { c.Network().SetDelay(0); return nil }
	default:
		return f, fmt.Errorf("unknown fault kind %q", s.Kind)
	}
	logf("fault: %s %s", f.Kind, f.Detail)
	wctx, stop := context.WithCancel(ctx)
	elected := watchElection(wctx, cl, c.Size(), f.Led, brokers)
	sleep(ctx, s.For)
	stop()
	f.Elected = <-elected
	err := undo()
	f.End = time.Now()
	if !f.Elected.IsZero() {
		logf("fault: new leaders for %v after %v", f.Led, f.Elected.Sub(f.Start).Round(time.Millisecond))
	}
	return f, err
}

// watchElection polls a broker that is not faulted for metadata until it
// names leaders outside victims for every partition of led, and sends the
// time it did (zero if ctx ended first).
func watchElection(ctx context.Context, cl *kgo.Client, size int, led, victims []int32) <-chan time.Time {
	out := make(chan time.Time, 1)
	if len(led) == 0 {
		out <- time.Time{}
		return out
	}
	ask := bystander(size, victims)
	go func() {
		for {
			m, err := leaderMapFrom(ctx, cl, ask)
			if err == nil {
				moved := 0
				for _, p := range led {
					if l, ok := m[p]; ok && !slices.Contains(victims, l) {
						moved++
					}
				}
				if moved == len(led) {
					out <- time.Now()
					return
				}
			}
			select {
			case <-ctx.Done():
				out <- time.Time{}
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func createTopic(ctx context.Context, adm *kadm.Client, partitions int32, rf int16) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := adm.CreateTopic(cctx, partitions, rf, nil, topic)
		cancel()
		if err == nil && resp.Err == nil {
			return nil
		}
		if err == nil {
			err = resp.Err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("chaos: create topic: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leaders returns each partition's leader epoch.
func leaders(ctx context.Context, adm *kadm.Client) (map[int32]int32, error) {
	return partitionsBy(ctx, adm, func(p kadm.PartitionDetail) int32 { return p.LeaderEpoch })
}

// bystander is the first broker that is not one of victims.
func bystander(size int, victims []int32) int32 {
	for id := int32(1); id <= int32(size); id++ {
		if !slices.Contains(victims, id) {
			return id
		}
	}
	return 1
}

// leaderMapFrom returns each partition's leader as broker id names it.
func leaderMapFrom(ctx context.Context, cl *kgo.Client, id int32) (map[int32]int32, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
	if err != nil {
		return nil, err
	}
	if len(resp.Topics) != 1 {
		return nil, fmt.Errorf("metadata of broker %d: %d topics", id, len(resp.Topics))
	}
	out := map[int32]int32{}
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode == 0 && p.Leader >= 0 {
			out[p.Partition] = p.Leader
		}
	}
	return out, nil
}

// allEpochs returns every partition's leader epoch, retrying (up to 30 s)
// until metadata names a leader for each.
func allEpochs(ctx context.Context, adm *kadm.Client, partitions int32) map[int32]int32 {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := leaders(ctx, adm)
		if err == nil && len(m) == int(partitions) || time.Now().After(deadline) || ctx.Err() != nil {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderMap returns each partition's leader, as metadata names it.
func leaderMap(ctx context.Context, adm *kadm.Client) (map[int32]int32, error) {
	return partitionsBy(ctx, adm, func(p kadm.PartitionDetail) int32 { return p.Leader })
}

// partitionsBy asks for the topic's metadata and returns f of each
// partition that has a leader.
func partitionsBy(ctx context.Context, adm *kadm.Client, f func(kadm.PartitionDetail) int32) (map[int32]int32, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int32{}
	for _, p := range md.Topics[topic].Partitions {
		if p.Err == nil && p.Leader >= 0 {
			out[p.Partition] = f(p)
		}
	}
	return out, nil
}

// waitLeaders waits until metadata names a leader for every partition.
func waitLeaders(ctx context.Context, adm *kadm.Client, partitions int32, limit time.Duration) (map[int32]int32, error) {
	deadline := time.Now().Add(limit)
	for {
		m, err := leaderMap(ctx, adm)
		if err == nil && len(m) == int(partitions) {
			return m, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return m, fmt.Errorf("leaders of %d of %d partitions known after %v (%v)", len(m), partitions, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// caughtUpReplicas waits until every partition has Brokers replicas that
// end at the same offset, then returns them (the last read when the limit
// passes: the checker reports the difference).
func caughtUpReplicas(ctx context.Context, c Cluster, partitions int32, limit time.Duration) (map[int32][]Replica, error) {
	deadline := time.Now().Add(limit)
	for {
		rs, err := c.Replicas(ctx, topic, partitions)
		if err == nil {
			done := true
			for p := range partitions {
				r := rs[p]
				if len(r) < min(3, c.Size()) {
					done = false
					break
				}
				for _, x := range r[1:] {
					if x.Next != r[0].Next {
						done = false
					}
				}
			}
			if done {
				return rs, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return rs, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// diagnose logs every broker's replica states and saves them with the
// brokers' goroutine dumps in dir (a temporary directory when dir is
// empty), for a run that got stuck.
func diagnose(ctx context.Context, c Cluster, dir string, logf func(string, ...any)) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "chaos-diagnosis-"); err != nil {
			logf("diagnose: %v", err)
			return
		}
	}
	lines, err := c.Diagnose(ctx, dir)
	for _, l := range lines {
		logf("diagnosis: %s", l)
	}
	if err != nil {
		logf("diagnose: %v", err)
	}
	logf("diagnosis: goroutine dumps and replica states saved in %s", dir)
}

func writeHistorySummary(path string, r *Result) error {
	return os.WriteFile(path, []byte(r.Report.String()), 0o644)
}
