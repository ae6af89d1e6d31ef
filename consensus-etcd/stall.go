package etcd

import (
	"sync/atomic"
	"time"
)

// stallClock tells when this node's disk is stalled: a synced write is in
// flight and none has completed for a while. The ticker holds the Raft
// clocks of all groups meanwhile, so that time this node could not act in
// (it could neither persist a vote nor acknowledge an append, nor commit as
// a leader) does not count: a candidate's election timeout, a follower's
// lease or a leader's CheckQuorum. Without it, fsync spikes longer than the
// election timeout made elections time out before the votes for them were
// durable, over and over (duelling candidates, a group without a leader for
// as long as the disk stayed slow), and leaders stepped down while their
// followers' answers waited for the disk. Safety does not depend on ticks.
// A leader whose disk stalls for longer than an election timeout stops
// heartbeating, and followers with working disks replace it.
type stallClock struct {
	inflight atomic.Int32
	since    atomic.Int64 // unix nanos: last completion, or the start of the first write in flight
}

// begin records a synced write starting.
func (s *stallClock) begin() {
	if s.inflight.Add(1) == 1 {
		s.since.Store(time.Now().UnixNano())
	}
}

// end records a synced write done: the disk made progress.
func (s *stallClock) end() {
	s.since.Store(time.Now().UnixNano())
	s.inflight.Add(-1)
}

// stalled reports whether a synced write has been waited for longer than d
// with none completing (the ticker uses a heartbeat interval).
func (s *stallClock) stalled(now time.Time, d time.Duration) bool {
	return s.inflight.Load() > 0 && now.Sub(time.Unix(0, s.since.Load())) > d
}
