package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBench runs `chronik bench` end to end with tiny sizes against kfake,
// one in-process Chronik broker (wal, etcd, fsync always) and one whose
// store runs as a plugin subprocess (this test binary, see TestMain), as a
// table and as JSON. It checks the shape and that every figure is
// non-zero, not the speed. It takes a few seconds, so it runs under -short
// too.
func TestBench(t *testing.T) {
	const sub = "chronik-1:wal:subprocess"
	r := chronik(t, t.TempDir(), nil, "bench", "--records", "2000", "--targets", "kfake,chronik-1,"+sub, "--dir", t.TempDir())
	if r.code != exitOK {
		t.Fatalf("bench: exit %d\n%s", r.code, r.stderr)
	}
	// The first table, up to the blank line, then the storage table.
	main, storage, _ := strings.Cut(r.stdout, "\n\n")
	rows := tableRows(main)
	for _, target := range []string{"kfake", "chronik-1", sub} {
		f, ok := rows[target]
		if !ok {
			t.Fatalf("no row for %s in\n%s", target, r.stdout)
		}
		// records/s, MB/s, p50, p99, ratio, records/s, MB/s, ratio
		if len(f) != 8 {
			t.Fatalf("row %s has %d columns, want 8: %q", target, len(f), f)
		}
		for i, s := range f {
			if v, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64); err != nil || v <= 0 {
				t.Errorf("row %s column %d = %q, want a positive number", target, i+1, s)
			}
		}
	}
	// target, storage, mode, produce vs wal, consume vs wal, open ms,
	// plugin MiB, bench MiB, growth MiB
	rows = tableRows(storage)
	for target, want := range map[string]string{
		"kfake":     "- - - - - - positive any",
		"chronik-1": "wal inprocess 1.00x 1.00x any - positive any",
		sub:         "wal subprocess positive positive positive positive positive any",
	} {
		f := rows[target]
		w := strings.Fields(want)
		if len(f) != len(w) {
			t.Fatalf("storage row %s = %q, want %d columns\n%s", target, f, len(w), r.stdout)
		}
		for i, s := range f {
			v, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
			switch w[i] {
			case "any":
			case "positive":
				if err != nil || v <= 0 {
					t.Errorf("storage row %s column %d = %q, want a positive number", target, i+2, s)
				}
			default:
				if s != w[i] {
					t.Errorf("storage row %s column %d = %q, want %q", target, i+2, s, w[i])
				}
			}
		}
	}

	r = chronik(t, t.TempDir(), nil, "bench", "--json", "--targets", "chronik-1,kfake", "--duration", "200ms", "--dir", t.TempDir())
	if r.code != exitOK {
		t.Fatalf("bench --json: exit %d\n%s", r.code, r.stderr)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("bench --json output: %v\n%s", err, r.stdout)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2:\n%s", len(rep.Results), r.stdout)
	}
	for _, res := range rep.Results {
		p, c := res.Produce, res.Consume
		if p.Records == 0 || p.Records != c.Records || p.Bytes != p.Records*1024 || p.P99Ms <= 0 ||
			c.RecordsPerSec <= 0 || res.ProduceRatio == nil || *res.ProduceRatio <= 0 {
			t.Errorf("%s: %+v", res.Target, res)
		}
		if res.Target == "chronik-1" && (res.Brokers != 1 || res.Storage != "wal" || res.PluginMode != "inprocess" ||
			len(res.StoreOpenMs) != 1 || res.ProduceRatioWAL == nil || *res.ProduceRatioWAL != 1) {
			t.Errorf("%s: storage fields %+v", res.Target, res)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--targets", "nope"},
		{"bench", "--targets", "chronik-0"},
		{"bench", "--targets", "chronik-1:wal:sideways"},
		{"bench", "--targets", "chronik-1::subprocess"},
		{"bench", "--targets", "chronik-1:wal:subprocess:x"},
		{"bench", "--targets", "chronik-01"},
		{"bench", "--targets", "external"},
		{"bench", "--acks", "2"},
		{"bench", "--partitions", "0"},
	} {
		if r := chronik(t, t.TempDir(), nil, args...); r.code != exitConfig {
			t.Errorf("%q: exit %d, want %d\n%s", args, r.code, exitConfig, r.stderr)
		}
	}
}

// tableRows maps the first field of each line of table to the others.
func tableRows(table string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f[1:]
		}
	}
	return rows
}

func TestParseChronikTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want chronikTarget
	}{
		{"chronik-1", chronikTarget{brokers: 1}},
		{"chronik-3:pebble", chronikTarget{brokers: 3, storage: "pebble"}},
		{"chronik-3:wal:subprocess-mtls", chronikTarget{brokers: 3, storage: "wal", mode: modeSubprocessMTLS}},
	} {
		got, err := parseChronikTarget(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseChronikTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := percentile(d, tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}
