package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Fault kinds a schedule draws from.
const (
	KindKill      = "kill"      // SIGKILL a broker, restart it after Step.For
	KindPause     = "pause"     // SIGSTOP a broker for Step.For, then SIGCONT
	KindPartition = "partition" // cut Raft links (see Variant), heal after Step.For
	KindLatency   = "latency"   // add latency to every Raft link for Step.For
	KindPowerLoss = "powerloss" // SIGKILL, lose the unsynced WAL tail, restart after Step.For
	// KindPluginKill SIGKILLs one of a broker's plugin processes (its
	// store's or its consensus engine's, drawn from the run's seed when
	// both run as subprocesses); the broker must exit by itself, and is
	// restarted after Step.For. Only for a cluster that runs at least one
	// of them as a subprocess (storage.plugin.mode or
	// consensus.plugin.mode: subprocess).
	KindPluginKill = "plugin-kill"
)

// AllKinds are the fault kinds in the order the docs list them.
var AllKinds = []string{KindKill, KindPause, KindPartition, KindLatency, KindPowerLoss, KindPluginKill}

// DefaultKinds are the kinds a schedule draws from when none are named:
// those every cluster offers (not plugin-kill).
var DefaultKinds = []string{KindKill, KindPause, KindPartition, KindLatency, KindPowerLoss}

// Partition variants.
const (
	PartIsolate = "isolate" // one broker cut from all others (a minority | majority split)
	PartBridge  = "bridge"  // two brokers cut from each other, a third still reaches both
	PartOneWay  = "one-way" // one direction of one link cut
)

// Step is one fault of a schedule: At after the run starts it begins, For
// later it ends, and the next step waits for the cluster to recover.
type Step struct {
	Kind    string
	Brokers []int32 // the brokers it hits (1-based); for a one-way cut, from then to
	Variant string  // for partitions
	Delay   time.Duration
	For     time.Duration
	// Leader: the step targets the leader of partition Partition at the
	// time it starts (Brokers is then filled in when it runs).
	Leader    bool
	Partition int32
}

func (s Step) String() string {
	var b strings.Builder
	b.WriteString(s.Kind)
	if s.Variant != "" {
		b.WriteString("/" + s.Variant)
	}
	switch {
	case s.Leader:
		fmt.Fprintf(&b, " leader of p%d", s.Partition)
	case s.Kind == KindPartition && s.Variant == PartOneWay:
		fmt.Fprintf(&b, " %d->%d", s.Brokers[0], s.Brokers[1])
	case len(s.Brokers) > 0:
		fmt.Fprintf(&b, " %v", s.Brokers)
	}
	if s.Delay > 0 {
		fmt.Fprintf(&b, " +%v", s.Delay)
	}
	fmt.Fprintf(&b, " for %v", s.For)
	return b.String()
}

// ScheduleOptions shape a schedule.
type ScheduleOptions struct {
	Seed       uint64
	Kinds      []string
	Brokers    int
	Partitions int32
	Cycles     int
	// MinFor and MaxFor bound how long a fault lasts (defaults 1.5s, 4s):
	// longer than an election timeout, so pauses and partitions force
	// elections.
	MinFor, MaxFor time.Duration
}

// NewSchedule draws opts.Cycles faults from opts.Kinds with a generator
// seeded by opts.Seed: the same options give the same schedule, so a
// failing run is replayed with its seed. Kinds take turns in the order
// given, so every kind gets its share even in a short run; targets,
// variants and durations are random. The kinds that hit one broker (kill,
// pause, powerloss, plugin-kill) draw alike, so replacing one of them by
// another in Kinds changes only the kind of those steps.
func NewSchedule(opts ScheduleOptions) ([]Step, error) {
	if len(opts.Kinds) == 0 {
		opts.Kinds = DefaultKinds
	}
	for _, k := range opts.Kinds {
		if !slices.Contains(AllKinds, k) {
			return nil, fmt.Errorf("chaos: unknown fault kind %q (want %s)", k, strings.Join(AllKinds, ","))
		}
	}
	if opts.Brokers < 3 {
		return nil, fmt.Errorf("chaos: %d brokers: faults need at least 3", opts.Brokers)
	}
	if opts.MinFor == 0 {
		opts.MinFor = 1500 * time.Millisecond
	}
	if opts.MaxFor < opts.MinFor {
		opts.MaxFor = max(opts.MinFor, 4*time.Second)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x6368726f6e696b)) // "chronik"
	dur := func() time.Duration {
		return opts.MinFor + time.Duration(rng.Int64N(int64(opts.MaxFor-opts.MinFor)+1))
	}
	broker := func() int32 { return int32(rng.IntN(opts.Brokers) + 1) }
	two := func() []int32 {
		a := broker()
		b := broker()
		for b == a {
			b = broker()
		}
		return []int32{a, b}
	}
	out := make([]Step, 0, opts.Cycles)
	for i := 0; i < opts.Cycles; i++ {
		s := Step{Kind: opts.Kinds[i%len(opts.Kinds)], For: dur()}
		switch s.Kind {
		case KindKill, KindPause, KindPowerLoss, KindPluginKill:
			// Half the time the victim is a partition's leader, so failover
			// is measured; otherwise any broker (often a follower).
			if rng.IntN(2) == 0 && opts.Partitions > 0 {
				s.Leader, s.Partition = true, int32(rng.IntN(int(opts.Partitions)))
			} else {
				s.Brokers = []int32{broker()}
			}
		case KindPartition:
			switch rng.IntN(3) {
			case 0:
				s.Variant = PartIsolate
				if rng.IntN(2) == 0 && opts.Partitions > 0 {
					s.Leader, s.Partition = true, int32(rng.IntN(int(opts.Partitions)))
				} else {
					s.Brokers = []int32{broker()}
				}
			case 1:
				s.Variant, s.Brokers = PartBridge, two()
			default:
				s.Variant, s.Brokers = PartOneWay, two()
			}
		case KindLatency:
			s.Delay = time.Duration(20+rng.IntN(180)) * time.Millisecond
		}
		out = append(out, s)
	}
	return out, nil
}
