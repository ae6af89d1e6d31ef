package chaos

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestComputeStats(t *testing.T) {
	h := &History{Start: at(0), End: at(10_000), Elections: 3}
	// 100 OK sends with latencies 1..100ms: 10 per second.
	for i := range 100 {
		h.Sends = append(h.Sends, Send{Partition: int32(i % 2), Start: at(100 * i), End: at(100*i + i + 1), Outcome: OK})
	}
	h.Sends = append(h.Sends, Send{Partition: 0, Start: at(0), End: at(5000), Outcome: Unknown})
	// Acknowledged just after the kill, but sent before it (by the killed
	// leader): not a failover.
	h.Sends = append(h.Sends, Send{Partition: 1, Start: at(1990), End: at(2001), Outcome: OK})
	h.Faults = []Fault{
		// p0 sends end at 100*i+i+1 for even i: first after 2000 is i=20 at 2021;
		// p1's first after 2000 is i=21 at 2122. The max is 122ms.
		{Kind: "kill", Start: at(2000), End: at(3000), Led: []int32{0, 1}},
		// p0 only: i=50 ends at 5051. A power loss is a kill too.
		{Kind: "powerloss", Start: at(5000), End: at(6000), Led: []int32{0}, Elected: at(5030)},
		// A pause is left out of failover times, but its election counts.
		{Kind: "pause", Start: at(5000), End: at(6000), Led: []int32{0}, Elected: at(5400)},
		{Kind: "partition", Start: at(6000), End: at(7000)},                 // leads nothing
		{Kind: "kill", Start: at(10_001), End: at(10_100), Led: []int32{1}}, // never recovered in the run
	}
	st := ComputeStats(h)
	if st.Duration != 10*time.Second || st.Throughput != 10.1 || st.Elections != 3 {
		t.Errorf("duration %v throughput %v elections %d", st.Duration, st.Throughput, st.Elections)
	}
	if st.P50 != 50*time.Millisecond || st.P99 != 99*time.Millisecond {
		t.Errorf("p50 %v p99 %v", st.P50, st.P99)
	}
	if want := []time.Duration{122 * time.Millisecond, 51 * time.Millisecond}; !slices.Equal(st.FailoverTimes, want) {
		t.Errorf("failovers %v, want %v", st.FailoverTimes, want)
	}
	if st.FailoverP50 != 51*time.Millisecond || st.FailoverMax != 122*time.Millisecond {
		t.Errorf("failover p50 %v max %v", st.FailoverP50, st.FailoverMax)
	}
	if want := []time.Duration{30 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(st.ElectionTimes, want) ||
		st.ElectionP50 != 30*time.Millisecond || st.ElectionMax != 400*time.Millisecond {
		t.Errorf("elections %v p50 %v max %v", st.ElectionTimes, st.ElectionP50, st.ElectionMax)
	}
}

func TestComputeStatsPluginExits(t *testing.T) {
	h := &History{Faults: []Fault{
		{Kind: KindPluginKill, Plugin: PluginConsensus, Exit: "exit 1"},
		{Kind: KindPluginKill, Plugin: PluginStorage, Exit: "exit 1"},
		{Kind: KindPluginKill, Plugin: PluginConsensus, Exit: "panic"},
		{Kind: KindPluginKill, Plugin: PluginConsensus, Exit: "exit 1"},
		{Kind: KindKill},
	}}
	want := map[string]map[string]int{PluginConsensus: {"exit 1": 2, "panic": 1}, PluginStorage: {"exit 1": 1}}
	if got := ComputeStats(h).PluginKillExits; !reflect.DeepEqual(got, want) {
		t.Errorf("plugin-kill exits %v, want %v", got, want)
	}
}

func TestComputeStatsEmpty(t *testing.T) {
	st := ComputeStats(&History{})
	if st.P50 != 0 || st.Throughput != 0 || st.FailoverMax != 0 || len(st.FailoverTimes) != 0 {
		t.Errorf("%+v", st)
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4}
	for _, tt := range []struct{ q, want int }{{0, 1}, {25, 1}, {50, 2}, {51, 3}, {99, 4}, {100, 4}} {
		if got := percentile(d, tt.q); got != time.Duration(tt.want) {
			t.Errorf("p%d = %d, want %d", tt.q, got, tt.want)
		}
	}
}
