package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBench runs `chronik bench` end to end with tiny sizes against kfake
// and one in-process Chronik broker (wal, etcd, fsync always), as a table
// and as JSON. It checks the shape and that every figure is non-zero, not
// the speed. It takes about a second, so it runs under -short too.
func TestBench(t *testing.T) {
	r := chronik(t, t.TempDir(), nil, "bench", "--records", "2000", "--targets", "kfake,chronik-1", "--dir", t.TempDir())
	if r.code != exitOK {
		t.Fatalf("bench: exit %d\n%s", r.code, r.stderr)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == "kfake" || f[0] == "chronik-1") {
			rows[f[0]] = f[1:]
		}
	}
	for _, target := range []string{"kfake", "chronik-1"} {
		f, ok := rows[target]
		if !ok {
			t.Fatalf("no row for %s in\n%s", target, r.stdout)
		}
		// records/s, MB/s, p50, p99, ratio, records/s, MB/s, ratio
		if len(f) != 8 {
			t.Fatalf("row %s has %d columns, want 8: %q", target, len(f), f)
		}
		for i, s := range f {
			v, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
			if err != nil || v <= 0 {
				t.Errorf("row %s column %d = %q, want a positive number", target, i+1, s)
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
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--targets", "nope"},
		{"bench", "--targets", "chronik-0"},
		{"bench", "--targets", "external"},
		{"bench", "--acks", "2"},
		{"bench", "--partitions", "0"},
	} {
		if r := chronik(t, t.TempDir(), nil, args...); r.code != exitConfig {
			t.Errorf("%q: exit %d, want %d\n%s", args, r.code, exitConfig, r.stderr)
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
