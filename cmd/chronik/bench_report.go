package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// benchParams are the settings of a run, echoed in its report.
type benchParams struct {
	Records    int      `json:"records"`
	Duration   string   `json:"duration"`
	RecordSize int      `json:"record_size"`
	Partitions int      `json:"partitions"`
	Acks       string   `json:"acks"`
	Idempotent bool     `json:"idempotent"`
	Inflight   int      `json:"inflight"`
	Storage    string   `json:"storage"`
	Consensus  string   `json:"consensus"`
	PluginsDir string   `json:"plugins_dir,omitempty"`
	Set        []string `json:"set,omitempty"`
	Dir        string   `json:"dir,omitempty"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	NumCPU     int      `json:"num_cpu"`
}

func (p benchParams) String() string {
	amount := fmt.Sprintf("%d records", p.Records)
	if p.Duration != "0s" {
		amount = "produce for " + p.Duration
	}
	s := fmt.Sprintf("%s of %d bytes, %d partitions, acks=%s, idempotent=%t, inflight %d, storage %s, consensus %s, GOMAXPROCS %d",
		amount, p.RecordSize, p.Partitions, p.Acks, p.Idempotent, p.Inflight, p.Storage, p.Consensus, p.GOMAXPROCS)
	if p.PluginsDir != "" {
		s += ", plugins in " + p.PluginsDir
	}
	if len(p.Set) > 0 {
		s += ", set " + strings.Join(p.Set, " ")
	}
	if p.Dir != "" {
		s += ", data in " + p.Dir
	}
	return s
}

// benchResult is one target's row. The ratios divide its records/s by
// kfake's, or by the in-process wal target's with as many brokers, in the
// same run; they are absent when that target was not measured.
type benchResult struct {
	Target       string      `json:"target"`
	Produce      phaseResult `json:"produce"`
	Consume      phaseResult `json:"consume"`
	ProduceRatio *float64    `json:"produce_ratio_vs_kfake,omitempty"`
	ConsumeRatio *float64    `json:"consume_ratio_vs_kfake,omitempty"`

	// The storage of a chronik target's brokers, as configured.
	Brokers    int    `json:"brokers,omitempty"`
	Storage    string `json:"storage,omitempty"`
	PluginMode string `json:"plugin_mode,omitempty"`
	AutoMTLS   bool   `json:"auto_mtls,omitempty"`

	ProduceRatioWAL *float64 `json:"produce_ratio_vs_wal_inprocess,omitempty"`
	ConsumeRatioWAL *float64 `json:"consume_ratio_vs_wal_inprocess,omitempty"`

	// StoreOpenMs is how long each broker's node.OpenStore took: for a
	// plugin, starting its process, the handshake, opening the store and
	// loading its groups.
	StoreOpenMs []float64 `json:"store_open_ms,omitempty"`
	// PluginPeakRSSMiB is the peak resident memory (VmHWM) of each
	// broker's storage plugin process just before it stopped (-1: not
	// readable).
	PluginPeakRSSMiB []float64 `json:"plugin_peak_rss_mib,omitempty"`
	// BenchPeakRSSMiB is the peak resident memory of this process (the
	// client, kfake, in-process brokers and stores) from the target's
	// start to the end of its consume phase, and BenchRSSGrowthMiB that
	// peak less the resident memory at the start. Absent without /proc.
	BenchPeakRSSMiB   float64 `json:"bench_peak_rss_mib,omitempty"`
	BenchRSSGrowthMiB float64 `json:"bench_rss_growth_mib,omitempty"`
}

// describe records the storage of a chronik target.
func (r *benchResult) describe(st *storageRun) {
	if st == nil {
		return
	}
	r.Brokers, r.Storage, r.PluginMode, r.AutoMTLS = st.brokers, st.typ, string(st.mode), st.mtls
	for _, d := range st.open {
		r.StoreOpenMs = append(r.StoreOpenMs, float64(d.Microseconds())/1000)
	}
}

// walBaseline reports whether r is the in-process wal target its size's
// ratios are taken against.
func (r *benchResult) walBaseline() bool {
	return r.Storage == "wal" && r.PluginMode == "inprocess"
}

// benchReport is the output of a run.
type benchReport struct {
	Params  benchParams   `json:"params"`
	Results []benchResult `json:"results"`
}

// ratios fills in each result's ratios against kfake's, if kfake ran, and
// each chronik target's against the first in-process wal target with as
// many brokers, if one ran.
func (r *benchReport) ratios() {
	var base *benchResult
	wal := map[int]*benchResult{}
	for i := range r.Results {
		res := &r.Results[i]
		if res.Target == targetKfake {
			base = res
		}
		if res.walBaseline() && wal[res.Brokers] == nil {
			wal[res.Brokers] = res
		}
	}
	ratio := func(v, b float64) *float64 {
		if b <= 0 {
			return nil
		}
		x := v / b
		return &x
	}
	for i := range r.Results {
		res := &r.Results[i]
		if base != nil {
			res.ProduceRatio = ratio(res.Produce.RecordsPerSec, base.Produce.RecordsPerSec)
			res.ConsumeRatio = ratio(res.Consume.RecordsPerSec, base.Consume.RecordsPerSec)
		}
		if w := wal[res.Brokers]; w != nil && res.Brokers > 0 {
			res.ProduceRatioWAL = ratio(res.Produce.RecordsPerSec, w.Produce.RecordsPerSec)
			res.ConsumeRatioWAL = ratio(res.Consume.RecordsPerSec, w.Consume.RecordsPerSec)
		}
	}
}

func (r *benchReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints one row per target, then the storage table.
func (r *benchReport) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tproduce rec/s\tMB/s\tp50 ms\tp99 ms\tvs kfake\tconsume rec/s\tMB/s\tvs kfake\t")
	for _, res := range r.Results {
		p, c := res.Produce, res.Consume
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.2f\t%.2f\t%s\t%.0f\t%.1f\t%s\t\n",
			res.Target, p.RecordsPerSec, p.MBPerSec, p.P50Ms, p.P99Ms, ratioString(res.ProduceRatio),
			c.RecordsPerSec, c.MBPerSec, ratioString(res.ConsumeRatio))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return r.writeStorageTable(w)
}

// writeStorageTable prints each target's storage, its ratios to the
// in-process wal target of its size, store open times and memory.
func (r *benchReport) writeStorageTable(w io.Writer) error {
	fmt.Fprint(w, `
storage and memory (per broker values joined by /):
  vs wal       records/s over the in-process wal target with as many brokers in this run
  open ms      node.OpenStore per broker; for a plugin: process start, handshake, store open
  plugin MiB   peak RSS (VmHWM) of each broker's storage plugin process, a process of its own
  bench MiB    peak RSS of this bench process (client, kfake, in-process brokers and stores)
               during the target, and its growth over the target's start
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tstorage\tmode\tproduce vs wal\tconsume vs wal\topen ms\tplugin MiB\tbench MiB\tgrowth MiB\t")
	for _, res := range r.Results {
		storage, mode := "-", "-"
		if res.Storage != "" {
			storage, mode = res.Storage, res.PluginMode
			if res.AutoMTLS {
				mode += "+mtls"
			}
		}
		bench, growth := "-", "-"
		if res.BenchPeakRSSMiB > 0 {
			bench, growth = fmt.Sprintf("%.0f", res.BenchPeakRSSMiB), fmt.Sprintf("%+.0f", res.BenchRSSGrowthMiB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", res.Target, storage, mode,
			ratioString(res.ProduceRatioWAL), ratioString(res.ConsumeRatioWAL),
			joinFigures(res.StoreOpenMs, "%.0f"), joinFigures(res.PluginPeakRSSMiB, "%.0f"), bench, growth)
	}
	return tw.Flush()
}

// joinFigures formats each of v and joins them with "/" ("-" for none, or
// for a negative one: not known).
func joinFigures(v []float64, format string) string {
	if len(v) == 0 {
		return "-"
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = "-"
		if x >= 0 {
			s[i] = fmt.Sprintf(format, x)
		}
	}
	return strings.Join(s, "/")
}

func ratioString(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx", *r)
}
