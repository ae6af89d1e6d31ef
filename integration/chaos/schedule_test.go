package chaos

import (
	"strings"
	"testing"

	"github.com/chronik-go/chronik/core/config"
)

// A kind that hits one broker can stand in for another without changing
// the rest of the schedule: verify relies on it to run one schedule on
// every pairing (plugin-kill as kill where the storage runs in process).
func TestScheduleKindSubstitution(t *testing.T) {
	opts := ScheduleOptions{Seed: 42, Brokers: 3, Partitions: 6, Cycles: 30,
		Kinds: []string{KindKill, KindPluginKill, KindPartition, KindLatency, KindPowerLoss, KindPause}}
	a, err := NewSchedule(opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Kinds = []string{KindKill, KindKill, KindPartition, KindLatency, KindKill, KindPause}
	b, err := NewSchedule(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		want := a[i]
		if want.Kind == KindPluginKill || want.Kind == KindPowerLoss {
			want.Kind = KindKill
		}
		if got := b[i]; got.String() != want.String() {
			t.Errorf("step %d: %s, want %s", i, got, want)
		}
	}
}

func TestNewScheduleKinds(t *testing.T) {
	s, err := NewSchedule(ScheduleOptions{Seed: 1, Brokers: 3, Partitions: 6, Cycles: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range s {
		if st.Kind == KindPluginKill {
			t.Errorf("default kinds drew %s", st)
		}
	}
	if _, err := NewSchedule(ScheduleOptions{Seed: 1, Brokers: 3, Cycles: 1, Kinds: []string{"plugin-kil"}}); err == nil || !strings.Contains(err.Error(), "plugin-kill") {
		t.Errorf("unknown kind: %v, want an error listing the kinds", err)
	}
}

func TestPairingName(t *testing.T) {
	const in, sub = config.InProcess, config.Subprocess
	for _, tc := range []struct {
		backend       string
		consensusMode config.PluginMode
		storage       string
		storageMode   config.PluginMode
		want          string
	}{
		{"etcd", "", "", "", "etcd"},
		{"etcd", in, StorageWAL, in, "etcd"},
		{"etcd", sub, StorageWAL, in, "etcd/consensus-plugin"},
		{"etcd", in, StorageWAL, sub, "etcd+wal-plugin"},
		{"etcd", sub, StorageWAL, sub, "etcd/consensus-plugin+wal-plugin"},
		{"hashicorp", in, StoragePebble, sub, "hashicorp+pebble-plugin"},
		{"hashicorp", sub, StoragePebble, sub, "hashicorp/consensus-plugin+pebble-plugin"},
		{"etcd", in, "memory", in, "etcd+memory"},
	} {
		if got := PairingName(tc.backend, tc.consensusMode, tc.storage, tc.storageMode); got != tc.want {
			t.Errorf("PairingName(%s, %s, %s, %s) = %q, want %q", tc.backend, tc.consensusMode, tc.storage, tc.storageMode, got, tc.want)
		}
	}
}

func TestMarkdownColumns(t *testing.T) {
	def := []Summary{{Pairing: "etcd", Backend: "etcd", ConsensusMode: "inprocess", Storage: "wal", StorageMode: "inprocess"}}
	md := Markdown(def)
	if !strings.HasPrefix(md, "| | etcd |\n") {
		t.Errorf("default pairing: header %q, want the backend alone", strings.SplitN(md, "\n", 2)[0])
	}
	if strings.Contains(md, "| consensus engine |") {
		t.Errorf("default pairing: a row says where the engine runs:\n%s", md)
	}
	mixed := append(def, Summary{Pairing: "etcd/consensus-plugin+pebble-plugin", Backend: "etcd", ConsensusMode: "subprocess",
		Storage: "pebble", StorageMode: "subprocess", FaultsByKind: map[string]int{KindPluginKill: 3},
		PluginExits: map[string]map[string]int{PluginStorage: {"exit 1": 1, "panic": 1}, PluginConsensus: {"exit 1": 1}}})
	md = Markdown(mixed)
	for _, want := range []string{
		"| | etcd | etcd/consensus-plugin+pebble-plugin |\n",
		"| consensus engine | etcd, in process | etcd, plugin subprocess |\n",
		"| storage | wal, in process | pebble, plugin subprocess |\n",
		"| plugin-kill: how the broker exited | - | consensus plugin: exit 1 ×1; storage plugin: exit 1 ×1, panic ×1 |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("mixed pairings: no line %q in\n%s", want, md)
		}
	}
}

func TestCheckKinds(t *testing.T) {
	const in, sub = config.InProcess, config.Subprocess
	for _, tc := range []struct {
		o    RunOptions
		want string // in the error; "" for none
	}{
		{RunOptions{Storage: StorageWAL, ConsensusMode: in, StorageMode: in, Kinds: []string{KindKill, KindPowerLoss}}, ""},
		{RunOptions{Storage: StorageWAL, ConsensusMode: in, StorageMode: sub, Kinds: []string{KindPluginKill, KindPowerLoss}}, ""},
		{RunOptions{Storage: StorageWAL, ConsensusMode: sub, StorageMode: in, Kinds: []string{KindPluginKill, KindPowerLoss}}, ""},
		{RunOptions{Storage: StorageWAL, ConsensusMode: sub, StorageMode: sub, Kinds: []string{KindPluginKill}}, ""},
		{RunOptions{Storage: StorageWAL, ConsensusMode: in, StorageMode: in, Kinds: []string{KindPluginKill}}, "needs the storage or the consensus engine run as a subprocess"},
		{RunOptions{Storage: StoragePebble, ConsensusMode: in, StorageMode: sub, Kinds: []string{KindPowerLoss}}, "needs storage wal"},
		{RunOptions{Storage: StoragePebble, ConsensusMode: sub, StorageMode: in, Kinds: []string{KindKill}}, "runs only as a subprocess"},
	} {
		err := checkKinds(tc.o)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s consensus %s, %s %s, %v: %v, want %q", tc.o.Backend, tc.o.ConsensusMode, tc.o.Storage, tc.o.StorageMode, tc.o.Kinds, err, tc.want)
		}
	}
}
