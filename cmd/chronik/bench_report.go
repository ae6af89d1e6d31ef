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
	if len(p.Set) > 0 {
		s += ", set " + strings.Join(p.Set, " ")
	}
	if p.Dir != "" {
		s += ", data in " + p.Dir
	}
	return s
}

// benchResult is one target's row. The ratios divide its records/s by
// kfake's in the same run; they are absent when kfake was not measured.
type benchResult struct {
	Target       string      `json:"target"`
	Produce      phaseResult `json:"produce"`
	Consume      phaseResult `json:"consume"`
	ProduceRatio *float64    `json:"produce_ratio_vs_kfake,omitempty"`
	ConsumeRatio *float64    `json:"consume_ratio_vs_kfake,omitempty"`
}

// benchReport is the output of a run.
type benchReport struct {
	Params  benchParams   `json:"params"`
	Results []benchResult `json:"results"`
}

// ratios fills in each result's ratios against kfake's, if kfake ran.
func (r *benchReport) ratios() {
	var base *benchResult
	for i := range r.Results {
		if r.Results[i].Target == targetKfake {
			base = &r.Results[i]
		}
	}
	if base == nil {
		return
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
		res.ProduceRatio = ratio(res.Produce.RecordsPerSec, base.Produce.RecordsPerSec)
		res.ConsumeRatio = ratio(res.Consume.RecordsPerSec, base.Consume.RecordsPerSec)
	}
}

func (r *benchReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints one row per target.
func (r *benchReport) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tproduce rec/s\tMB/s\tp50 ms\tp99 ms\tvs kfake\tconsume rec/s\tMB/s\tvs kfake\t")
	for _, res := range r.Results {
		p, c := res.Produce, res.Consume
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.2f\t%.2f\t%s\t%.0f\t%.1f\t%s\t\n",
			res.Target, p.RecordsPerSec, p.MBPerSec, p.P50Ms, p.P99Ms, ratioString(res.ProduceRatio),
			c.RecordsPerSec, c.MBPerSec, ratioString(res.ConsumeRatio))
	}
	return tw.Flush()
}

func ratioString(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx", *r)
}
