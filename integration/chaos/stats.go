package chaos

import (
	"fmt"
	"slices"
	"time"
)

// Stats are the performance figures of a run.
type Stats struct {
	Duration   time.Duration // of the workload
	Throughput float64       // acknowledged sends per second
	// P50 and P99 are the produce latencies (Start to End) of OK sends.
	P50, P99 time.Duration
	// FailoverTimes has one entry per fault with Led partitions that every
	// led partition recovered from: the longest, over its led partitions,
	// from the fault's start to the end of the first OK send on that
	// partition that started after it. Faults with a led partition that never
	// saw such a send are left out.
	// Only kills (kill, powerloss, plugin-kill) count, as "leader killed
	// to first successful produce on its partitions"; a paused or isolated
	// leader keeps its clients' requests hanging until it is back, which
	// measures the client's timeouts rather than the cluster.
	FailoverTimes            []time.Duration
	FailoverP50, FailoverMax time.Duration
	// ElectionTimes has one entry per fault with Led partitions (any
	// kind) whose partitions all got a new leader while it lasted: from
	// its start until metadata named another leader for every one of them.
	ElectionTimes            []time.Duration
	ElectionP50, ElectionMax time.Duration
	Elections                int64 // copied from the History
	// PluginKillExits counts how brokers exited after a plugin-kill, by
	// the plugin killed (PluginStorage, PluginConsensus), then by exit
	// ("exit 1", "panic", ...; see PluginKill.Exit).
	PluginKillExits map[string]map[string]int
}

// ComputeStats computes the figures of h.
func ComputeStats(h *History) Stats {
	st := Stats{Duration: h.End.Sub(h.Start), Elections: h.Elections}
	var lat []time.Duration
	for _, s := range h.Sends {
		if s.Outcome == OK {
			lat = append(lat, s.End.Sub(s.Start))
		}
	}
	if st.Duration > 0 {
		st.Throughput = float64(len(lat)) / st.Duration.Seconds()
	}
	slices.Sort(lat)
	st.P50, st.P99 = percentile(lat, 50), percentile(lat, 99)
	ok := okSendsOf(h)
	for _, f := range h.Faults {
		if f.Kind == KindPluginKill && f.Exit != "" {
			if st.PluginKillExits == nil {
				st.PluginKillExits = map[string]map[string]int{}
			}
			if st.PluginKillExits[f.Plugin] == nil {
				st.PluginKillExits[f.Plugin] = map[string]int{}
			}
			st.PluginKillExits[f.Plugin][f.Exit]++
		}
		if len(f.Led) == 0 {
			continue
		}
		if !f.Elected.IsZero() {
			st.ElectionTimes = append(st.ElectionTimes, f.Elected.Sub(f.Start))
		}
		if d, _, found := failover(ok, f); found {
			st.FailoverTimes = append(st.FailoverTimes, d)
		}
	}
	fo := slices.Clone(st.FailoverTimes)
	slices.Sort(fo)
	st.FailoverP50 = percentile(fo, 50)
	if len(fo) > 0 {
		st.FailoverMax = fo[len(fo)-1]
	}
	el := slices.Clone(st.ElectionTimes)
	slices.Sort(el)
	st.ElectionP50 = percentile(el, 50)
	if len(el) > 0 {
		st.ElectionMax = el[len(el)-1]
	}
	return st
}

// failover is fault f's failover time: the longest, over the partitions
// it led, from its start to the end of the first OK send on that partition
// that started after it (so that acknowledgements the killed leader had
// already sent do not count); worst is that partition. ok is false for a
// fault that is not a kill (kill, powerloss, plugin-kill), leads nothing,
// or has a partition with no such send.
func failover(sends map[int32]okSends, f Fault) (d time.Duration, worst int32, ok bool) {
	if len(f.Led) == 0 || f.Kind != KindKill && f.Kind != KindPowerLoss && f.Kind != KindPluginKill {
		return 0, 0, false
	}
	for _, p := range f.Led {
		end, found := sends[p].firstEndStartedAfter(f.Start)
		if !found {
			return 0, 0, false
		}
		if x := end.Sub(f.Start); x >= d {
			d, worst = x, p
		}
	}
	return d, worst, true
}

// okSends are one partition's OK sends sorted by start, with minEnd[i] the
// earliest end among sends i and later.
type okSends struct {
	starts []time.Time
	minEnd []time.Time
}

func (o okSends) firstEndStartedAfter(t time.Time) (time.Time, bool) {
	i, _ := slices.BinarySearchFunc(o.starts, t, func(s, t time.Time) int {
		if s.Before(t) {
			return -1
		}
		return 1
	})
	if i == len(o.starts) {
		return time.Time{}, false
	}
	return o.minEnd[i], true
}

func okSendsOf(h *History) map[int32]okSends {
	by := map[int32][]Send{}
	for _, s := range h.Sends {
		if s.Outcome == OK {
			by[s.Partition] = append(by[s.Partition], s)
		}
	}
	out := make(map[int32]okSends, len(by))
	for p, ss := range by {
		slices.SortFunc(ss, func(a, b Send) int { return a.Start.Compare(b.Start) })
		o := okSends{starts: make([]time.Time, len(ss)), minEnd: make([]time.Time, len(ss))}
		for i := len(ss) - 1; i >= 0; i-- {
			o.starts[i], o.minEnd[i] = ss[i].Start, ss[i].End
			if i+1 < len(ss) && o.minEnd[i+1].Before(o.minEnd[i]) {
				o.minEnd[i] = o.minEnd[i+1]
			}
		}
		out[p] = o
	}
	return out
}

// FailoverDetails describes each kill's failover, for the log.
func FailoverDetails(h *History) []string {
	ok := okSendsOf(h)
	var out []string
	for i, f := range h.Faults {
		if d, p, found := failover(ok, f); found {
			out = append(out, fmt.Sprintf("fault %d (%s %s at %s): failover %v, slowest p%d", i+1, f.Kind, f.Detail,
				f.Start.Format("15:04:05.000"), d.Round(time.Millisecond), p))
		}
	}
	return out
}

// percentile returns the q-th percentile of sorted d (nearest rank), 0 for
// an empty d.
func percentile(d []time.Duration, q int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*q + 99) / 100 // ceil(n*q/100), the nearest rank
	return d[max(i, 1)-1]
}
