package chaos

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/chronik-go/chronik/core/config"
)

// Summary is one run's line of the comparison, as written to JSON.
type Summary struct {
	// Pairing names the run's backend, storage and plugin mode:
	// "etcd · wal · subprocess".
	Pairing       string         `json:"pairing"`
	Backend       string         `json:"backend"`
	Storage       string         `json:"storage"`
	PluginMode    string         `json:"plugin_mode"`
	Seed          uint64         `json:"seed"`
	Cycles        int            `json:"cycles"`
	FaultsByKind  map[string]int `json:"faults_by_kind"`
	DurationSec   float64        `json:"duration_sec"`
	SendsOK       int            `json:"sends_ok"`
	SendsFailed   int            `json:"sends_failed"`
	SendsUnknown  int            `json:"sends_unknown"`
	Throughput    float64        `json:"throughput_per_sec"`
	ProduceP50Ms  float64        `json:"produce_p50_ms"`
	ProduceP99Ms  float64        `json:"produce_p99_ms"`
	FailoverP50Ms float64        `json:"failover_p50_ms"`
	FailoverMaxMs float64        `json:"failover_max_ms"`
	Failovers     int            `json:"failovers_measured"`
	ElectionP50Ms float64        `json:"new_leader_p50_ms"`
	ElectionMaxMs float64        `json:"new_leader_max_ms"`
	ElectionsSeen int            `json:"new_leaders_measured"`
	Elections     int64          `json:"elections"`
	PluginExits   map[string]int `json:"plugin_kill_exits,omitempty"` // how brokers exited after a plugin-kill
	Reads         int            `json:"reads_checked"`
	Watermarks    int            `json:"watermarks_checked"`
	Commits       int            `json:"commits_checked"`
	Replicas      int            `json:"replicas_compared"`
	Anomalies     int            `json:"anomalies"`
	AnomalyKinds  map[string]int `json:"anomalies_by_kind"`
	Errors        []string       `json:"harness_errors,omitempty"`
	Pass          bool           `json:"pass"`
	Dir           string         `json:"dir,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Summarize condenses a result.
func Summarize(r *Result) Summary {
	s := Summary{
		Pairing: PairingName(r.Backend, r.Storage, r.PluginMode),
		Backend: r.Backend, Storage: r.Storage, PluginMode: string(r.PluginMode),
		Seed: r.Seed, Cycles: r.Cycles,
		FaultsByKind:  map[string]int{},
		DurationSec:   r.Stats.Duration.Seconds(),
		SendsOK:       r.Report.Sends.OK,
		SendsFailed:   r.Report.Sends.Failed,
		SendsUnknown:  r.Report.Sends.Unknown,
		Throughput:    r.Stats.Throughput,
		ProduceP50Ms:  ms(r.Stats.P50),
		ProduceP99Ms:  ms(r.Stats.P99),
		FailoverP50Ms: ms(r.Stats.FailoverP50),
		FailoverMaxMs: ms(r.Stats.FailoverMax),
		Failovers:     len(r.Stats.FailoverTimes),
		ElectionP50Ms: ms(r.Stats.ElectionP50),
		ElectionMaxMs: ms(r.Stats.ElectionMax),
		ElectionsSeen: len(r.Stats.ElectionTimes),
		Elections:     r.Stats.Elections,
		PluginExits:   r.Stats.PluginKillExits,
		Reads:         r.Report.Checked.Observations,
		Watermarks:    r.Report.Checked.HWMs,
		Commits:       r.Report.Checked.Commits,
		Replicas:      r.Report.Checked.Replicas,
		Anomalies:     len(r.Report.Anomalies),
		AnomalyKinds:  r.Report.ByKind,
		Errors:        r.Errors,
		Pass:          r.OK(),
		Dir:           r.Dir,
	}
	for _, st := range r.Steps {
		s.FaultsByKind[strings.Fields(st)[0]]++
	}
	return s
}

// PairingName names a run by its backend, storage and plugin mode
// ("etcd · wal · subprocess"); empty storage and mode are the defaults.
func PairingName(backend, storage string, mode config.PluginMode) string {
	if storage == "" {
		storage = StorageWAL
	}
	if mode == "" {
		mode = config.InProcess
	}
	return backend + " · " + storage + " · " + string(mode)
}

// defaultPairing reports whether s ran the default storage and mode (the
// WAL, in process).
func (s Summary) defaultPairing() bool {
	return (s.Storage == "" || s.Storage == StorageWAL) && (s.PluginMode == "" || s.PluginMode == string(config.InProcess))
}

// JSON is the comparison as indented JSON.
func JSON(runs []Summary) ([]byte, error) {
	return json.MarshalIndent(struct {
		Runs []Summary `json:"runs"`
	}{runs}, "", "  ")
}

// Markdown is the comparison as a Markdown table, one column per run,
// named by its backend when every run has the default storage and plugin
// mode, and by its pairing otherwise.
func Markdown(runs []Summary) string {
	byBackend := true
	for _, s := range runs {
		byBackend = byBackend && s.defaultPairing()
	}
	var b strings.Builder
	row := func(name string, f func(s Summary) string) {
		b.WriteString("| " + name + " |")
		for _, s := range runs {
			b.WriteString(" " + f(s) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("| |")
	for _, s := range runs {
		name := s.Pairing
		if byBackend || name == "" {
			name = s.Backend
		}
		b.WriteString(" " + name + " |")
	}
	b.WriteString("\n|---|")
	for range runs {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	row("seed", func(s Summary) string { return fmt.Sprint(s.Seed) })
	row("fault cycles", func(s Summary) string { return fmt.Sprint(s.Cycles) })
	row("faults", func(s Summary) string { return kinds(s.FaultsByKind) })
	row("duration", func(s Summary) string { return fmt.Sprintf("%.0f s", s.DurationSec) })
	row("sends ok / failed / unknown", func(s Summary) string {
		return fmt.Sprintf("%d / %d / %d", s.SendsOK, s.SendsFailed, s.SendsUnknown)
	})
	row("throughput (acked/s)", func(s Summary) string { return fmt.Sprintf("%.0f", s.Throughput) })
	row("produce p50 / p99", func(s Summary) string { return fmt.Sprintf("%.1f / %.1f ms", s.ProduceP50Ms, s.ProduceP99Ms) })
	row("failover: leader killed to first ack, p50 / max", func(s Summary) string {
		return fmt.Sprintf("%.0f / %.0f ms (%d)", s.FailoverP50Ms, s.FailoverMaxMs, s.Failovers)
	})
	row("new leader named in metadata, p50 / max", func(s Summary) string {
		return fmt.Sprintf("%.0f / %.0f ms (%d)", s.ElectionP50Ms, s.ElectionMaxMs, s.ElectionsSeen)
	})
	row("elections (leader epochs gained)", func(s Summary) string { return fmt.Sprint(s.Elections) })
	if slices.ContainsFunc(runs, func(s Summary) bool { return s.FaultsByKind[KindPluginKill] > 0 }) {
		row("plugin-kill: how the broker exited", func(s Summary) string { return counts(s.PluginExits, ": ") })
	}
	row("checked: reads / watermarks / commits / replicas", func(s Summary) string {
		return fmt.Sprintf("%d / %d / %d / %d", s.Reads, s.Watermarks, s.Commits, s.Replicas)
	})
	row("anomalies", func(s Summary) string {
		if s.Anomalies == 0 {
			return "0"
		}
		return fmt.Sprintf("**%d** (%s)", s.Anomalies, kinds(s.AnomalyKinds))
	})
	row("harness errors", func(s Summary) string { return fmt.Sprint(len(s.Errors)) })
	row("result", func(s Summary) string {
		if s.Pass {
			return "pass"
		}
		return "**FAIL**"
	})
	return b.String()
}

// kinds lists the counts of m by key: "kill 3, pause 2".
func kinds(m map[string]int) string { return counts(m, " ") }

// counts lists the counts of m by key, each key then sep then its count.
func counts(m map[string]int, sep string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s%s%d", k, sep, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
