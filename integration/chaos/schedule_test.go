package chaos

import (
	"strings"
	"testing"
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

func TestMarkdownColumns(t *testing.T) {
	def := []Summary{{Pairing: "etcd · wal · inprocess", Backend: "etcd", Storage: "wal", PluginMode: "inprocess"}}
	if md := Markdown(def); !strings.HasPrefix(md, "| | etcd |\n") {
		t.Errorf("default pairing: header %q, want the backend alone", strings.SplitN(md, "\n", 2)[0])
	}
	mixed := append(def, Summary{Pairing: "etcd · pebble · subprocess", Backend: "etcd", Storage: "pebble", PluginMode: "subprocess",
		FaultsByKind: map[string]int{KindPluginKill: 2}, PluginExits: map[string]int{"exit 1": 1, "panic": 1}})
	md := Markdown(mixed)
	if !strings.HasPrefix(md, "| | etcd · wal · inprocess | etcd · pebble · subprocess |\n") {
		t.Errorf("mixed pairings: header %q, want every pairing named", strings.SplitN(md, "\n", 2)[0])
	}
	if !strings.Contains(md, "| plugin-kill: how the broker exited | - | exit 1: 1, panic: 1 |") {
		t.Errorf("no plugin-kill exits row in\n%s", md)
	}
}

func TestCheckKinds(t *testing.T) {
	for _, tc := range []struct {
		o    RunOptions
		want string // in the error; "" for none
	}{
		{RunOptions{Storage: StorageWAL, PluginMode: "inprocess", Kinds: []string{KindKill, KindPowerLoss}}, ""},
		{RunOptions{Storage: StorageWAL, PluginMode: "subprocess", Kinds: []string{KindPluginKill, KindPowerLoss}}, ""},
		{RunOptions{Storage: StorageWAL, PluginMode: "inprocess", Kinds: []string{KindPluginKill}}, "needs the storage run as a subprocess"},
		{RunOptions{Storage: StoragePebble, PluginMode: "subprocess", Kinds: []string{KindPowerLoss}}, "needs storage wal"},
		{RunOptions{Storage: StoragePebble, PluginMode: "inprocess", Kinds: []string{KindKill}}, "runs only as a subprocess"},
	} {
		err := checkKinds(tc.o)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s/%s %v: %v, want %q", tc.o.Storage, tc.o.PluginMode, tc.o.Kinds, err, tc.want)
		}
	}
}
