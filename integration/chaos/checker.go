package chaos

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The kinds of anomaly Check reports.
const (
	// Lost: an acknowledged (OK) send is not in the drain.
	Lost = "lost"
	// Duplicate: one value at two offsets (in the drain, or in reads of a
	// value the drain does not hold).
	Duplicate = "duplicate"
	// Divergent: one offset seen with two values, by any two of the
	// readers and the drain, across leader changes and restarts. A read of
	// a record that later vanished from its offset is one.
	Divergent = "divergent"
	// AckedOffsetWrong: an OK send's value is in the drain, but not at
	// the offset its acknowledgement named.
	AckedOffsetWrong = "acked-offset-wrong"
	// Order: one producer session's acknowledged records in one partition
	// sit at offsets out of their send order.
	Order = "order"
	// FailedVisible: a Failed send was read or drained.
	FailedVisible = "failed-visible"
	// HWMBackwards: a fetch's high watermark is lower than one another
	// fetch returned that ended before this one started, or lower than
	// offset+1 of a send acknowledged before this fetch started.
	HWMBackwards = "hwm-backwards"
	// CommitBackwards: a group's committed offset is lower than one an
	// OffsetFetch returned that ended before this one started.
	CommitBackwards = "commit-backwards"
	// ReplicaDiverged: two replicas of a partition differ byte for byte
	// over their common range, or end at different offsets.
	ReplicaDiverged = "replica-diverged"
	// Gap: the drain lacks an offset below the end offset, or a reader saw
	// an offset at or above the final end offset (visible, then gone).
	Gap = "gap"
)

// anomalyKinds lists the kinds of anomaly in report order.
var anomalyKinds = []string{Lost, Divergent, AckedOffsetWrong, Duplicate, Gap, Order, FailedVisible, HWMBackwards, CommitBackwards, ReplicaDiverged}

// Anomaly is one violation Check found, with its evidence.
type Anomaly struct {
	Kind      string
	Partition int32
	Offset    int64 // -1 when not applicable
	Value     string
	Broker    int32 // 0 when not applicable
	At        time.Time
	Detail    string // the evidence in words
}

func (a Anomaly) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s p%d", a.Kind, a.Partition)
	if a.Offset >= 0 {
		fmt.Fprintf(&b, "@%d", a.Offset)
	}
	if a.Value != "" {
		fmt.Fprintf(&b, " %q", a.Value)
	}
	if a.Broker != 0 {
		fmt.Fprintf(&b, " broker %d", a.Broker)
	}
	if !a.At.IsZero() {
		fmt.Fprintf(&b, " at %s", a.At.Format("15:04:05.000"))
	}
	fmt.Fprintf(&b, ": %s", a.Detail)
	return b.String()
}

// PartitionReport summarizes one partition.
type PartitionReport struct {
	Partition int32
	Acked     int   // OK sends
	Drained   int   // records in the drain
	End       int64 // the drain's end offset
	Anomalies map[string]int
}

// SendCounts counts sends by outcome; UnknownVisible are the Unknown sends
// found in the drain.
type SendCounts struct{ OK, Failed, Unknown, UnknownVisible int }

// Report is what Check found.
type Report struct {
	Anomalies  []Anomaly
	ByKind     map[string]int
	Sends      SendCounts
	Partitions []PartitionReport
	// Checked counts what the history held beyond the sends: reads,
	// watermarks, committed offsets and replicas.
	Checked struct{ Observations, HWMs, Commits, Replicas int }
}

// OK reports whether no anomaly was found.
func (r Report) OK() bool { return len(r.Anomalies) == 0 }

// maxShown is how many anomalies of each kind String shows.
const maxShown = 20

// String is a human summary: the counts, then up to maxShown anomalies of
// each kind with their evidence.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sends: %d ok, %d failed, %d unknown (%d of them visible)\n", r.Sends.OK, r.Sends.Failed, r.Sends.Unknown, r.Sends.UnknownVisible)
	fmt.Fprintf(&b, "checked: %d reads, %d high watermarks, %d committed offsets, %d replicas\n",
		r.Checked.Observations, r.Checked.HWMs, r.Checked.Commits, r.Checked.Replicas)
	for _, p := range r.Partitions {
		fmt.Fprintf(&b, "partition %d: %d acked, %d drained, end %d", p.Partition, p.Acked, p.Drained, p.End)
		for _, k := range anomalyKinds {
			if n := p.Anomalies[k]; n > 0 {
				fmt.Fprintf(&b, ", %d %s", n, k)
			}
		}
		b.WriteString("\n")
	}
	if r.OK() {
		b.WriteString("no anomalies\n")
		return b.String()
	}
	fmt.Fprintf(&b, "%d anomalies\n", len(r.Anomalies))
	for _, k := range anomalyKinds {
		n := r.ByKind[k]
		if n == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s: %d\n", k, n)
		shown := 0
		for _, a := range r.Anomalies {
			if a.Kind != k {
				continue
			}
			if shown == maxShown {
				fmt.Fprintf(&b, "  ... %d more\n", n-shown)
				break
			}
			fmt.Fprintf(&b, "  %s\n", a)
			shown++
		}
	}
	return b.String()
}

// Check verifies a history against what Kafka with acks=all promises and
// what Chronik adds (Raft-committed acknowledgements, a leader that serves
// only once it applied its own term's first entry). It runs in O(n log n)
// over the sends, reads, watermarks and commits.
//
// What is not reported, on purpose:
//   - Unknown sends that never appear (they may or may not be written);
//     one that appears twice is a Duplicate.
//   - Order among Unknown sends, and across producer sessions: a request
//     of an abandoned attempt may be appended after later sends.
//   - A high watermark that lags one seen by an overlapping fetch: only
//     fetches ordered in real time (one ended before the other started) are
//     compared. Chronik needs no further allowance: a new leader answers
//     no fetch before it applied its own term's epoch marker (see
//     core/broker partition.serving), so its watermark covers every
//     committed record, and the leader acknowledges a produce only after
//     applying it. One case remains that Kafka does not order either: a
//     deposed leader that has not yet learned of its successor (paused, or
//     cut off) may answer a fetch from its stale state. Runs with pause
//     or partition faults can report that as hwm-backwards; its evidence
//     names both watermarks and intervals.
func Check(h *History) Report {
	c := newChecker(h)
	c.drain()
	c.sends()
	c.observations()
	c.order()
	c.hwms()
	c.commits()
	c.replicas()
	r := c.report()
	r.Checked.Observations, r.Checked.HWMs, r.Checked.Commits = len(h.Observations), len(h.HWMs), len(h.Commits)
	for _, rs := range h.Replicas {
		r.Checked.Replicas += len(rs)
	}
	return r
}

type checker struct {
	h   *History
	out []Anomaly

	// Per partition: the drain's value at each offset below its end ("" if
	// missing), and its end.
	log map[int32][]string
	end map[int32]int64
	// Where each value sits in the drain (its first offset).
	at map[string]loc
	// Reads of offsets the drain does not cover, per partition and offset:
	// the first value read there.
	beyond map[loc]Observation
	// What was read at all, by value (for Failed and Unknown visibility
	// and for duplicates of values the drain lacks).
	readAt map[string]loc
	sendOf map[string]int // value -> index in h.Sends
	counts SendCounts
}

type loc struct {
	p   int32
	off int64
}

func newChecker(h *History) *checker {
	c := &checker{
		h:      h,
		log:    make(map[int32][]string),
		end:    make(map[int32]int64),
		at:     make(map[string]loc),
		beyond: make(map[loc]Observation),
		readAt: make(map[string]loc),
		sendOf: make(map[string]int, len(h.Sends)),
	}
	for i, s := range h.Sends {
		c.sendOf[s.Value] = i
	}
	return c
}

func (c *checker) add(a Anomaly) { c.out = append(c.out, a) }

// partitions returns every partition the history mentions, sorted.
func (c *checker) partitions() []int32 {
	seen := map[int32]bool{}
	for p := int32(0); p < c.h.Partitions; p++ {
		seen[p] = true
	}
	for p := range c.h.Drain {
		seen[p] = true
	}
	for p := range c.h.DrainEnds {
		seen[p] = true
	}
	out := make([]int32, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// drain indexes the drain and reports its gaps, duplicates and offsets
// drained twice with different values.
func (c *checker) drain() {
	for _, p := range c.partitions() {
		recs := slices.Clone(c.h.Drain[p])
		slices.SortStableFunc(recs, func(a, b DrainRecord) int { return cmp.Compare(a.Offset, b.Offset) })
		end, ok := c.h.DrainEnds[p]
		if !ok && len(recs) > 0 {
			end = recs[len(recs)-1].Offset + 1
		}
		c.end[p] = end
		log := make([]string, end)
		have := make([]bool, end)
		for _, r := range recs {
			if r.Offset < 0 || r.Offset >= end {
				c.add(Anomaly{Kind: Gap, Partition: p, Offset: r.Offset, Value: r.Value,
					Detail: fmt.Sprintf("drained offset %d outside [0, end %d)", r.Offset, end)})
				continue
			}
			if have[r.Offset] {
				if log[r.Offset] != r.Value {
					c.add(Anomaly{Kind: Divergent, Partition: p, Offset: r.Offset, Value: r.Value,
						Detail: fmt.Sprintf("drain returned offset %d twice: %q and %q", r.Offset, log[r.Offset], r.Value)})
				}
				continue
			}
			have[r.Offset], log[r.Offset] = true, r.Value
			if prev, dup := c.at[r.Value]; dup {
				c.add(Anomaly{Kind: Duplicate, Partition: p, Offset: r.Offset, Value: r.Value,
					Detail: fmt.Sprintf("drained at p%d@%d and p%d@%d%s", prev.p, prev.off, p, r.Offset, c.sendDetail(r.Value))})
				continue
			}
			c.at[r.Value] = loc{p, r.Offset}
		}
		for off := int64(0); off < end; off++ {
			if have[off] {
				continue
			}
			run := off
			for run < end && !have[run] {
				run++
			}
			c.add(Anomaly{Kind: Gap, Partition: p, Offset: off,
				Detail: fmt.Sprintf("drain lacks offsets [%d, %d) below its end %d", off, run, end)})
			off = run
		}
		c.log[p] = log
	}
}

// sendDetail describes the send of value v, if there is one.
func (c *checker) sendDetail(v string) string {
	i, ok := c.sendOf[v]
	if !ok {
		return ""
	}
	s := c.h.Sends[i]
	d := fmt.Sprintf("; sent by producer %d session %d seq %d to p%d, %s→%s, %s", s.Producer, s.Session, s.Seq, s.Partition,
		s.Start.Format("15:04:05.000"), s.End.Format("15:04:05.000"), s.Outcome)
	if s.Outcome == OK {
		d += fmt.Sprintf(" at offset %d", s.Offset)
	} else if s.Err != "" {
		d += ": " + s.Err
	}
	return d
}

// sends checks every send against the drain.
func (c *checker) sends() {
	for _, s := range c.h.Sends {
		l, inDrain := c.at[s.Value]
		switch s.Outcome {
		case OK:
			c.counts.OK++
			if !inDrain {
				now := "nothing"
				if log := c.log[s.Partition]; s.Offset >= 0 && s.Offset < int64(len(log)) {
					now = fmt.Sprintf("%q", log[s.Offset])
				}
				c.add(Anomaly{Kind: Lost, Partition: s.Partition, Offset: s.Offset, Value: s.Value, At: s.End,
					Detail: fmt.Sprintf("acknowledged at offset %d, not in the drain (end %d; the offset holds %s)%s", s.Offset, c.end[s.Partition], now, c.sendDetail(s.Value))})
			} else if l.p != s.Partition || l.off != s.Offset {
				c.add(Anomaly{Kind: AckedOffsetWrong, Partition: s.Partition, Offset: s.Offset, Value: s.Value, At: s.End,
					Detail: fmt.Sprintf("acknowledged at p%d@%d, drained at p%d@%d%s", s.Partition, s.Offset, l.p, l.off, c.sendDetail(s.Value))})
			}
		case Failed:
			c.counts.Failed++
			if inDrain {
				c.add(Anomaly{Kind: FailedVisible, Partition: l.p, Offset: l.off, Value: s.Value, At: s.End,
					Detail: "failed send drained" + c.sendDetail(s.Value)})
			}
		default:
			c.counts.Unknown++
			if inDrain {
				c.counts.UnknownVisible++
			}
		}
	}
}

// observations compares every read with the drain.
func (c *checker) observations() {
	for _, o := range c.h.Observations {
		log := c.log[o.Partition]
		switch {
		case o.Offset >= 0 && o.Offset < int64(len(log)):
			if d := log[o.Offset]; d != o.Value && d != "" {
				c.add(Anomaly{Kind: Divergent, Partition: o.Partition, Offset: o.Offset, Value: o.Value, At: o.At,
					Detail: fmt.Sprintf("%s read %q at offset %d, the drain holds %q there%s", o.Reader, o.Value, o.Offset, d, c.sendDetail(o.Value))})
			}
		default:
			l := loc{o.Partition, o.Offset}
			if first, seen := c.beyond[l]; seen {
				if first.Value != o.Value {
					c.add(Anomaly{Kind: Divergent, Partition: o.Partition, Offset: o.Offset, Value: o.Value, At: o.At,
						Detail: fmt.Sprintf("%s read %q at offset %d, %s read %q there at %s (beyond the drain's end %d)", o.Reader, o.Value, o.Offset, first.Reader, first.Value, first.At.Format("15:04:05.000"), c.end[o.Partition])})
				}
			} else {
				c.beyond[l] = o
				c.add(Anomaly{Kind: Gap, Partition: o.Partition, Offset: o.Offset, Value: o.Value, At: o.At,
					Detail: fmt.Sprintf("%s read offset %d, at or beyond the drain's end %d: visible, then gone%s", o.Reader, o.Offset, c.end[o.Partition], c.sendDetail(o.Value))})
			}
		}
		if _, inDrain := c.at[o.Value]; inDrain {
			c.checkFailedRead(o)
			continue
		}
		// A value the drain lacks: read at two offsets is a duplicate.
		if prev, seen := c.readAt[o.Value]; !seen {
			c.readAt[o.Value] = loc{o.Partition, o.Offset}
			c.checkFailedRead(o)
		} else if prev != (loc{o.Partition, o.Offset}) {
			c.add(Anomaly{Kind: Duplicate, Partition: o.Partition, Offset: o.Offset, Value: o.Value, At: o.At,
				Detail: fmt.Sprintf("%s read it at p%d@%d, also read at p%d@%d; not in the drain%s", o.Reader, o.Partition, o.Offset, prev.p, prev.off, c.sendDetail(o.Value))})
		}
	}
}

// checkFailedRead reports a read of a Failed send, unless the drain holds
// it (sends already reported that).
func (c *checker) checkFailedRead(o Observation) {
	i, ok := c.sendOf[o.Value]
	if !ok || c.h.Sends[i].Outcome != Failed {
		return
	}
	if _, inDrain := c.at[o.Value]; inDrain {
		return
	}
	c.add(Anomaly{Kind: FailedVisible, Partition: o.Partition, Offset: o.Offset, Value: o.Value, At: o.At,
		Detail: fmt.Sprintf("failed send read by %s at offset %d%s", o.Reader, o.Offset, c.sendDetail(o.Value))})
}

// order checks, per producer session and partition, that acknowledged
// records sit in the drain in send order.
func (c *checker) order() {
	idx := make([]int, 0, len(c.h.Sends))
	for i, s := range c.h.Sends {
		if s.Outcome != OK {
			continue
		}
		if l, ok := c.at[s.Value]; ok && l.p == s.Partition {
			idx = append(idx, i)
		}
	}
	ss := c.h.Sends
	slices.SortFunc(idx, func(a, b int) int {
		x, y := ss[a], ss[b]
		return cmp.Or(cmp.Compare(x.Producer, y.Producer), cmp.Compare(x.Session, y.Session),
			cmp.Compare(x.Partition, y.Partition), cmp.Compare(x.Seq, y.Seq))
	})
	var prev int = -1 // the send with the highest drain offset so far in this group
	for _, i := range idx {
		s := ss[i]
		if prev >= 0 {
			q := ss[prev]
			if q.Producer != s.Producer || q.Session != s.Session || q.Partition != s.Partition {
				prev = -1
			}
		}
		off := c.at[s.Value].off
		if prev >= 0 {
			q := ss[prev]
			if qoff := c.at[q.Value].off; off < qoff {
				c.add(Anomaly{Kind: Order, Partition: s.Partition, Offset: off, Value: s.Value, At: s.End,
					Detail: fmt.Sprintf("producer %d session %d: seq %d (%q) at offset %d, before seq %d (%q) at offset %d", s.Producer, s.Session, s.Seq, s.Value, off, q.Seq, q.Value, qoff)})
				continue
			}
		}
		prev = i
	}
}

// bound is one value observed over [start, end] in real time; check marks
// the ones to verify (acknowledgements only bound others).
type bound struct {
	start, end time.Time
	v          int64
	check      bool
	what       string // evidence
}

// backwards reports every checked bound whose value is lower than that of
// a bound which ended before it started. Sorting by end and by start makes
// it O(n log n).
func backwards(bs []bound, report func(b, max bound)) {
	byEnd := make([]int, len(bs))
	byStart := make([]int, 0, len(bs))
	for i := range bs {
		byEnd[i] = i
		if bs[i].check {
			byStart = append(byStart, i)
		}
	}
	sort.SliceStable(byEnd, func(a, b int) bool { return bs[byEnd[a]].end.Before(bs[byEnd[b]].end) })
	sort.SliceStable(byStart, func(a, b int) bool { return bs[byStart[a]].start.Before(bs[byStart[b]].start) })
	j, best := 0, -1
	for _, i := range byStart {
		b := bs[i]
		for j < len(byEnd) && bs[byEnd[j]].end.Before(b.start) {
			if k := byEnd[j]; best < 0 || bs[k].v > bs[best].v {
				best = k
			}
			j++
		}
		if best >= 0 && b.v < bs[best].v {
			report(b, bs[best])
		}
	}
}

func span(s, e time.Time) string {
	return s.Format("15:04:05.000000") + "→" + e.Format("15:04:05.000000")
}

// hwms checks that high watermarks never go back in real time, across
// readers, and never fall below an acknowledgement that ended earlier.
func (c *checker) hwms() {
	per := map[int32][]bound{}
	for _, h := range c.h.HWMs {
		per[h.Partition] = append(per[h.Partition], bound{h.Start, h.End, h.HWM, true,
			fmt.Sprintf("%s fetched hwm %d over %s", h.Reader, h.HWM, span(h.Start, h.End))})
	}
	for _, s := range c.h.Sends {
		if s.Outcome == OK {
			if _, ok := per[s.Partition]; ok {
				per[s.Partition] = append(per[s.Partition], bound{s.Start, s.End, s.Offset + 1, false,
					fmt.Sprintf("%q acknowledged at offset %d over %s", s.Value, s.Offset, span(s.Start, s.End))})
			}
		}
	}
	for _, p := range sortedKeys(per) {
		backwards(per[p], func(b, m bound) {
			c.add(Anomaly{Kind: HWMBackwards, Partition: p, Offset: b.v, At: b.start,
				Detail: fmt.Sprintf("%s, after %s", b.what, m.what)})
		})
	}
}

// commits checks that each group's committed offsets never go back in
// real time.
func (c *checker) commits() {
	type key struct {
		g string
		p int32
	}
	per := map[key][]bound{}
	for _, m := range c.h.Commits {
		k := key{m.Group, m.Partition}
		per[k] = append(per[k], bound{m.Start, m.End, m.Offset, true,
			fmt.Sprintf("group %s committed %d, fetched over %s", m.Group, m.Offset, span(m.Start, m.End))})
	}
	keys := make([]key, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(strings.Compare(a.g, b.g), cmp.Compare(a.p, b.p)) })
	for _, k := range keys {
		backwards(per[k], func(b, m bound) {
			c.add(Anomaly{Kind: CommitBackwards, Partition: k.p, Offset: b.v, At: b.start,
				Detail: fmt.Sprintf("%s, after %s", b.what, m.what)})
		})
	}
}

func sortedKeys[V any](m map[int32]V) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// replicas compares every replica of a partition with the first: the
// same end offset, and the same bytes over their common range.
func (c *checker) replicas() {
	for _, p := range sortedKeys(c.h.Replicas) {
		rs := c.h.Replicas[p]
		for _, r := range rs[min(1, len(rs)):] {
			a := rs[0]
			if a.Next != r.Next {
				c.add(Anomaly{Kind: ReplicaDiverged, Partition: p, Offset: min(a.Next, r.Next), Broker: r.Broker,
					Detail: fmt.Sprintf("broker %d ends at offset %d, broker %d at %d", a.Broker, a.Next, r.Broker, r.Next)})
			}
			lo := max(a.Start, r.Start)
			pa, okA := batchFrom(a.Bytes, lo)
			pr, okR := batchFrom(r.Bytes, lo)
			if !okA || !okR {
				c.add(Anomaly{Kind: ReplicaDiverged, Partition: p, Offset: lo, Broker: r.Broker,
					Detail: fmt.Sprintf("cannot find offset %d in the batches of broker %d (%v) or %d (%v)", lo, a.Broker, okA, r.Broker, okR)})
				continue
			}
			ba, br := a.Bytes[pa:], r.Bytes[pr:]
			n := min(len(ba), len(br))
			for i := 0; i < n; i++ {
				if ba[i] != br[i] {
					c.add(Anomaly{Kind: ReplicaDiverged, Partition: p, Offset: offsetAt(ba, i), Broker: r.Broker,
						Detail: fmt.Sprintf("brokers %d and %d differ first at byte %d from offset %d (lengths %d and %d)", a.Broker, r.Broker, i, lo, len(ba), len(br))})
					break
				}
			}
		}
	}
}

// batchFrom returns the byte position of the first record batch whose
// base offset is at least off (len(b) when there is none); false when the
// batches cannot be parsed.
func batchFrom(b []byte, off int64) (int, bool) {
	for pos := 0; pos < len(b); {
		if len(b)-pos < 12 {
			return 0, false
		}
		base := int64(binary.BigEndian.Uint64(b[pos:]))
		n := int(binary.BigEndian.Uint32(b[pos+8:]))
		if base >= off {
			return pos, true
		}
		pos += 12 + n
	}
	return len(b), true
}

// offsetAt is the base offset of the batch holding byte i of b (-1 if b
// cannot be parsed).
func offsetAt(b []byte, i int) int64 {
	for pos := 0; pos+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[pos+8:]))
		if i < pos+12+n {
			return int64(binary.BigEndian.Uint64(b[pos:]))
		}
		pos += 12 + n
	}
	return -1
}

func (c *checker) report() Report {
	r := Report{Anomalies: c.out, ByKind: map[string]int{}, Sends: c.counts}
	per := map[int32]*PartitionReport{}
	get := func(p int32) *PartitionReport {
		if pr, ok := per[p]; ok {
			return pr
		}
		pr := &PartitionReport{Partition: p, End: c.end[p], Drained: len(c.h.Drain[p]), Anomalies: map[string]int{}}
		per[p] = pr
		return pr
	}
	for _, p := range c.partitions() {
		get(p)
	}
	for _, s := range c.h.Sends {
		if s.Outcome == OK {
			get(s.Partition).Acked++
		}
	}
	for _, a := range c.out {
		r.ByKind[a.Kind]++
		get(a.Partition).Anomalies[a.Kind]++
	}
	for _, p := range sortedKeys(per) {
		r.Partitions = append(r.Partitions, *per[p])
	}
	return r
}
