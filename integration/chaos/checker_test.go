package chaos

import (
	"encoding/binary"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// clean is a history with no anomaly: producer 0 wrote p0-0..p0-4 to
// partition 0 at offsets 0..4, a reader and the drain saw them, a fetch
// after the last ack saw hwm 5, and the group committed 2, then 5.
func clean() *History {
	h := &History{Topic: "t", Partitions: 1, Start: at(0), End: at(1000), Drain: map[int32][]DrainRecord{}}
	for i := range 5 {
		v := fmt.Sprintf("p0-%d", i)
		h.Sends = append(h.Sends, Send{Producer: 0, Seq: int64(i), Value: v, Partition: 0,
			Start: at(10 * i), End: at(10*i + 5), Outcome: OK, Offset: int64(i)})
		h.Drain[0] = append(h.Drain[0], DrainRecord{Offset: int64(i), Value: v})
		h.Observations = append(h.Observations, Observation{Reader: "assign-0", Partition: 0, Offset: int64(i), Value: v, At: at(100)})
	}
	h.HWMs = []HWM{
		{Reader: "assign-0", Partition: 0, HWM: 2, Start: at(0), End: at(20)},
		{Reader: "assign-0", Partition: 0, HWM: 5, Start: at(90), End: at(100)},
	}
	h.Commits = []Commit{
		{Group: "g", Partition: 0, Offset: -1, Start: at(0), End: at(1)},
		{Group: "g", Partition: 0, Offset: 2, Start: at(100), End: at(101)},
		{Group: "g", Partition: 0, Offset: 5, Start: at(200), End: at(201)},
	}
	return h
}

// batch is a minimal record batch header: base offset, length, padding.
func batch(base int64, body string) []byte {
	b := make([]byte, 12, 12+len(body))
	binary.BigEndian.PutUint64(b, uint64(base))
	binary.BigEndian.PutUint32(b[8:], uint32(len(body)))
	return append(b, body...)
}

func replica(broker int32, start, next int64, batches ...[]byte) Replica {
	r := Replica{Broker: broker, Start: start, Next: next}
	for _, b := range batches {
		r.Bytes = append(r.Bytes, b...)
	}
	return r
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h *History)
		want   map[string]int
	}{
		{"clean", func(h *History) {}, nil},
		{"clean with unknown sends, one visible", func(h *History) {
			h.Sends = append(h.Sends,
				Send{Producer: 1, Value: "p1-0", Partition: 0, Start: at(50), End: at(60), Outcome: Unknown, Offset: -1},
				Send{Producer: 1, Seq: 1, Value: "p1-1", Partition: 0, Start: at(50), End: at(60), Outcome: Unknown, Offset: -1})
			h.Drain[0] = append(h.Drain[0], DrainRecord{Offset: 5, Value: "p1-1"})
		}, nil},
		{"clean replicas", func(h *History) {
			h.Replicas = map[int32][]Replica{0: {
				replica(1, 0, 5, batch(0, "ab"), batch(2, "cde")),
				replica(2, 2, 5, batch(2, "cde")), // prefix dropped by retention
			}}
		}, nil},
		{"lost", func(h *History) {
			h.Drain[0] = h.Drain[0][:4]
			h.Observations = h.Observations[:4]
		}, map[string]int{Lost: 1}},
		{"lost and overwritten", func(h *History) {
			h.Drain[0][4].Value = "p1-0"
			h.Observations = h.Observations[:4]
			h.Sends = append(h.Sends, Send{Producer: 1, Value: "p1-0", Start: at(50), End: at(60), Outcome: Unknown, Offset: -1})
		}, map[string]int{Lost: 1}},
		{"duplicate in drain", func(h *History) {
			h.Drain[0] = append(h.Drain[0], DrainRecord{Offset: 5, Value: "p0-1"})
		}, map[string]int{Duplicate: 1}},
		{"unknown send twice", func(h *History) {
			h.Sends = append(h.Sends, Send{Producer: 1, Value: "p1-0", Start: at(50), End: at(60), Outcome: Unknown, Offset: -1})
			h.Drain[0] = append(h.Drain[0], DrainRecord{Offset: 5, Value: "p1-0"}, DrainRecord{Offset: 6, Value: "p1-0"})
		}, map[string]int{Duplicate: 1}},
		{"read diverges from drain", func(h *History) {
			h.Observations = append(h.Observations, Observation{Reader: "group-1", Partition: 0, Offset: 2, Value: "p1-7", At: at(30)})
		}, map[string]int{Divergent: 1}},
		{"two reads beyond the end diverge", func(h *History) {
			h.Observations = append(h.Observations,
				Observation{Reader: "group-1", Partition: 0, Offset: 7, Value: "p1-7", At: at(30)},
				Observation{Reader: "group-0", Partition: 0, Offset: 7, Value: "p1-8", At: at(40)})
		}, map[string]int{Gap: 1, Divergent: 1}},
		{"acked offset wrong", func(h *History) {
			h.Sends[2].Offset = 3
		}, map[string]int{AckedOffsetWrong: 1}},
		{"order", func(h *History) {
			h.Sends[1].Offset, h.Sends[2].Offset = 2, 1
			h.Drain[0][1].Value, h.Drain[0][2].Value = "p0-2", "p0-1"
			h.Observations[1].Value, h.Observations[2].Value = "p0-2", "p0-1"
		}, map[string]int{Order: 1}},
		{"no order across sessions", func(h *History) {
			h.Sends[1].Offset, h.Sends[2].Offset = 2, 1
			h.Sends[2].Session, h.Sends[3].Session, h.Sends[4].Session = 1, 1, 1
			h.Sends[2].Seq, h.Sends[3].Seq, h.Sends[4].Seq = 0, 1, 2
			h.Drain[0][1].Value, h.Drain[0][2].Value = "p0-2", "p0-1"
			h.Observations[1].Value, h.Observations[2].Value = "p0-2", "p0-1"
		}, nil},
		{"failed send drained", func(h *History) {
			h.Sends[3].Outcome, h.Sends[3].Offset, h.Sends[3].Err = Failed, -1, "MESSAGE_TOO_LARGE"
		}, map[string]int{FailedVisible: 1}},
		{"failed send read, then gone", func(h *History) {
			h.Sends = append(h.Sends, Send{Producer: 1, Value: "big-p1-0", Start: at(50), End: at(50), Outcome: Failed, Offset: -1})
			h.Observations = append(h.Observations, Observation{Reader: "assign-0", Partition: 0, Offset: 5, Value: "big-p1-0", At: at(60)})
		}, map[string]int{FailedVisible: 1, Gap: 1}},
		{"drain gap", func(h *History) {
			h.Sends[2].Outcome, h.Sends[2].Offset = Unknown, -1
			h.Drain[0] = append(h.Drain[0][:2:2], h.Drain[0][3:]...)
			h.Observations = append(h.Observations[:2:2], h.Observations[3:]...)
		}, map[string]int{Gap: 1}},
		{"drain short of its end", func(h *History) {
			h.DrainEnds = map[int32]int64{0: 7}
		}, map[string]int{Gap: 1}},
		{"read then gone", func(h *History) {
			h.Sends = append(h.Sends, Send{Producer: 1, Value: "p1-0", Start: at(50), End: at(60), Outcome: Unknown, Offset: -1})
			h.Observations = append(h.Observations, Observation{Reader: "group-0", Partition: 0, Offset: 5, Value: "p1-0", At: at(70)})
		}, map[string]int{Gap: 1}},
		{"hwm backwards across readers", func(h *History) {
			h.HWMs = append(h.HWMs, HWM{Reader: "group-0", Partition: 0, HWM: 4, Start: at(101), End: at(120)})
		}, map[string]int{HWMBackwards: 1}},
		{"overlapping fetches may disagree", func(h *History) {
			h.HWMs = append(h.HWMs,
				// Overlaps the fetch of hwm 5 and the ack of offset 4.
				HWM{Reader: "group-0", Partition: 0, HWM: 4, Start: at(44), End: at(120)},
				// Overlaps the fetch of hwm 2 and the ack of offset 1.
				HWM{Reader: "group-1", Partition: 0, HWM: 1, Start: at(14), End: at(30)},
			)
		}, nil},
		{"hwm below an earlier ack", func(h *History) {
			h.HWMs = append(h.HWMs, HWM{Reader: "group-0", Partition: 0, HWM: 3, Start: at(40), End: at(41)}) // p0-3 acked at 35
		}, map[string]int{HWMBackwards: 1}},
		{"hwm during an ack", func(h *History) {
			h.HWMs = append(h.HWMs, HWM{Reader: "group-0", Partition: 0, HWM: 3, Start: at(34), End: at(41)})
		}, nil},
		{"commit backwards", func(h *History) {
			h.Commits = append(h.Commits, Commit{Group: "g", Partition: 0, Offset: 3, Start: at(202), End: at(203)})
		}, map[string]int{CommitBackwards: 1}},
		{"commit lost", func(h *History) {
			h.Commits = append(h.Commits, Commit{Group: "g", Partition: 0, Offset: -1, Start: at(300), End: at(301)})
		}, map[string]int{CommitBackwards: 1}},
		{"overlapping commit fetches may disagree", func(h *History) {
			h.Commits = append(h.Commits,
				Commit{Group: "g", Partition: 0, Offset: 3, Start: at(150), End: at(250)},
				// Starts as the fetch of 5 ends: not after it.
				Commit{Group: "g", Partition: 0, Offset: 4, Start: at(201), End: at(210)},
				Commit{Group: "other", Partition: 0, Offset: 1, Start: at(300), End: at(301)})
		}, nil},
		{"replica bytes differ", func(h *History) {
			h.Replicas = map[int32][]Replica{0: {
				replica(1, 0, 5, batch(0, "ab"), batch(2, "cde")),
				replica(2, 0, 5, batch(0, "ab"), batch(2, "cxe")),
			}}
		}, map[string]int{ReplicaDiverged: 1}},
		{"replica ends elsewhere", func(h *History) {
			h.Replicas = map[int32][]Replica{0: {
				replica(1, 0, 5, batch(0, "ab"), batch(2, "cde")),
				replica(3, 0, 2, batch(0, "ab")),
			}}
		}, map[string]int{ReplicaDiverged: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := clean()
			tt.mutate(h)
			r := Check(h)
			if tt.want == nil {
				tt.want = map[string]int{}
			}
			if !maps.Equal(r.ByKind, tt.want) {
				t.Errorf("anomalies %v, want %v\n%s", r.ByKind, tt.want, r)
			}
			if r.OK() != (len(tt.want) == 0) {
				t.Errorf("OK() = %v with %v", r.OK(), r.ByKind)
			}
			for _, a := range r.Anomalies {
				if a.Detail == "" {
					t.Errorf("anomaly without evidence: %+v", a)
				}
			}
		})
	}
}

func TestReportCounts(t *testing.T) {
	h := clean()
	h.Sends = append(h.Sends,
		Send{Producer: 1, Value: "p1-0", Outcome: Unknown, Offset: -1},
		Send{Producer: 1, Seq: 1, Value: "big-p1-1", Outcome: Failed, Offset: -1})
	h.Drain[0] = append(h.Drain[0], DrainRecord{Offset: 5, Value: "p1-0"})
	r := Check(h)
	if want := (SendCounts{OK: 5, Failed: 1, Unknown: 1, UnknownVisible: 1}); r.Sends != want {
		t.Errorf("sends %+v, want %+v", r.Sends, want)
	}
	if len(r.Partitions) != 1 || r.Partitions[0].Acked != 5 || r.Partitions[0].Drained != 6 || r.Partitions[0].End != 6 {
		t.Errorf("partitions %+v", r.Partitions)
	}
	if !strings.Contains(r.String(), "no anomalies") {
		t.Errorf("summary:\n%s", r)
	}
}

func TestReportStringLimitsEvidence(t *testing.T) {
	h := clean()
	h.Drain[0] = nil // every acked send lost
	for i := range 30 {
		h.Sends = append(h.Sends, Send{Producer: 2, Seq: int64(i), Value: fmt.Sprintf("p2-%d", i), Outcome: OK, Offset: int64(5 + i)})
	}
	h.Observations = nil
	r := Check(h)
	s := r.String()
	if r.ByKind[Lost] != 35 || strings.Count(s, "\n  lost ") != maxShown || !strings.Contains(s, "... 15 more") {
		t.Errorf("lost %d, summary:\n%s", r.ByKind[Lost], s)
	}
}

// bigHistory is n sends over 8 partitions by 8 producers, all acknowledged
// and drained, each read by two readers, with fetches and commits.
func bigHistory(n int) *History {
	const parts = 8
	h := &History{Topic: "t", Partitions: parts, Start: at(0), End: at(n), Drain: map[int32][]DrainRecord{}}
	next := make([]int64, parts)
	for i := range n {
		prod, seq := i%8, int64(i/8)
		p := int32(seq % parts)
		v := fmt.Sprintf("p%d-%d", prod, seq)
		off := next[p]
		next[p]++
		h.Sends = append(h.Sends, Send{Producer: prod, Seq: seq, Value: v, Partition: p, Start: at(i), End: at(i + 3), Outcome: OK, Offset: off})
		h.Drain[p] = append(h.Drain[p], DrainRecord{Offset: off, Value: v})
		for _, rd := range []string{"assign-0", "group-0"} {
			h.Observations = append(h.Observations, Observation{Reader: rd, Partition: p, Offset: off, Value: v, At: at(i + 5)})
		}
		if i%10 == 0 {
			h.HWMs = append(h.HWMs, HWM{Reader: "assign-0", Partition: p, HWM: next[p], Start: at(i + 3), End: at(i + 4)})
			h.Commits = append(h.Commits, Commit{Group: "g", Partition: p, Offset: next[p], Start: at(i + 3), End: at(i + 4)})
		}
	}
	return h
}

func TestCheckBigHistoryClean(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	if r := Check(bigHistory(n)); !r.OK() || r.Sends.OK != n {
		t.Fatalf("%s", r)
	}
}

func BenchmarkCheck1M(b *testing.B) {
	h := bigHistory(1_000_000)
	b.ResetTimer()
	for range b.N {
		if r := Check(h); !r.OK() {
			b.Fatal(r.String())
		}
	}
}
