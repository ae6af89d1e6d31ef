package chaos

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/chronik-go/chronik/core/config"
)

// Summary is one run's line of the comparison, as written to JSON.
type Summary struct {
	// Pairing names the run's backend, consensus mode, storage and
	// storage mode (see PairingName): "etcd/consensus-plugin+wal-plugin".
	Pairing       string         `json:"pairing"`
	Backend       string         `json:"backend"`
	ConsensusMode string         `json:"consensus_mode"`
	Storage       string         `json:"storage"`
	StorageMode   string         `json:"storage_mode"`
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
	// PluginExits counts how brokers exited after a plugin-kill, by the
	// plugin killed (storage, consensus), then by exit ("exit 1", ...).
	PluginExits  map[string]map[string]int `json:"plugin_kill_exits,omitempty"`
	Reads        int                       `json:"reads_checked"`
	Watermarks   int                       `json:"watermarks_checked"`
	Commits      int                       `json:"commits_checked"`
	Replicas     int                       `json:"replicas_compared"`
	Anomalies    int                       `json:"anomalies"`
	AnomalyKinds map[string]int            `json:"anomalies_by_kind"`
	Errors       []string                  `json:"harness_errors,omitempty"`
	Pass         bool                      `json:"pass"`
	Dir          string                    `json:"dir,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Summarize condenses a result.
func Summarize(r *Result) Summary {
	s := Summary{
		Pairing: PairingName(r.Backend, r.ConsensusMode, r.Storage, r.StorageMode),
		Backend: r.Backend, ConsensusMode: string(r.ConsensusMode),
		Storage: r.Storage, StorageMode: string(r.StorageMode),
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

// PairingName names a run by its backend, where the consensus engine
// runs, its storage and where the storage runs: the backend alone when
// everything runs in the broker process with the WAL ("etcd"), then
// "/consensus-plugin" when the engine runs as a plugin subprocess, and
// "+<storage>-plugin" when the store does ("+<storage>" for a store other
// than the WAL in process): "etcd/consensus-plugin", "etcd+wal-plugin",
// "hashicorp/consensus-plugin+pebble-plugin". Empty storage and modes
// are the defaults (wal, in process).
func PairingName(backend string, consensusMode config.PluginMode, storage string, storageMode config.PluginMode) string {
	name := backend
	if consensusMode == config.Subprocess {
		name += "/consensus-plugin"
	}
	if storage == "" {
		storage = StorageWAL
	}
	switch {
	case storageMode == config.Subprocess:
		name += "+" + storage + "-plugin"
	case storage != StorageWAL:
		name += "+" + storage
	}
	return name
}

// defaultPairing reports whether s ran everything in the broker process
// with the WAL.
func (s Summary) defaultPairing() bool {
	inProcess := func(m string) bool { return m == "" || m == string(config.InProcess) }
	return (s.Storage == "" || s.Storage == StorageWAL) && inProcess(s.ConsensusMode) && inProcess(s.StorageMode)
}

// where says where a component runs, for the table.
func where(mode string) string {
	if mode == string(config.Subprocess) {
		return "plugin subprocess"
	}
	return "in process"
}

// JSON is the comparison as indented JSON.
func JSON(runs []Summary) ([]byte, error) {
	return json.MarshalIndent(struct {
		Runs []Summary `json:"runs"`
	}{runs}, "", "  ")
}

// Markdown is the comparison as a Markdown table, one column per run,
// named by its pairing (PairingName: the backend alone when everything
// runs in process with the WAL). Unless every run is such, two rows say
// where each run's consensus engine and storage ran.
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
		if name == "" {
			name = s.Backend
		}
		b.WriteString(" " + name + " |")
	}
	b.WriteString("\n|---|")
	for range runs {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	if !byBackend {
		row("consensus engine", func(s Summary) string { return s.Backend + ", " + where(s.ConsensusMode) })
		row("storage", func(s Summary) string {
			st := s.Storage
			if st == "" {
				st = StorageWAL
			}
			return st + ", " + where(s.StorageMode)
		})
	}
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
		row("plugin-kill: how the broker exited", func(s Summary) string { return pluginExits(s.PluginExits) })
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

// pluginExits lists how brokers exited after each plugin was killed:
// "consensus plugin: exit 1 ×2; storage plugin: exit 1 ×1, panic ×1".
func pluginExits(m map[string]map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+" plugin: "+counts(m[k], " ×"))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// kinds lists the counts of m by key: "kill 3, pause 2".
func kinds(m map[string]int) string { return counts(m, " ") }

// counts lists the counts of m by key, each key then sep then its count.
func counts(m map[string]int, sep string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s%s%d", k, sep, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
