package broker

import (
	"errors"
	"fmt"
	"sort"

	"github.com/chronik-go/chronik/core/consensus"
)

// ErrNotHosted is what ReplicaRecords returns (wrapped) for a partition this
// broker holds no replica of: an unknown topic, a partition number out of
// range, or a partition whose replicas are on other brokers.
var ErrNotHosted = errors.New("partition not hosted here")

// ReplicaState describes this broker's replica of a partition, whatever its
// role: for tests and the durability checker, which compare replicas.
type ReplicaState struct {
	Leader      consensus.NodeID
	Term        uint64
	StartOffset int64
	NextOffset  int64  // the replica's applied end: the high watermark on the leader
	FirstIndex  uint64 // the first Raft index the replica's store still holds
	// Serving: this replica serves as leader now (partition.serving).
	Serving bool
	// ReadyTerm is the newest term whose epoch marker this replica applied.
	ReadyTerm uint64
	// Consensus is the group's own status, which Leader and Term above
	// (what LeaderChanged delivered) may lag.
	Consensus consensus.Status
}

// HostedReplica names one replica this broker hosts, with its state.
type HostedReplica struct {
	Topic     string
	Partition int32
	ReplicaState
}

// ReplicaRecords reads this broker's own replica of a partition (leader or
// not) from its log start to its applied end: whole batches with their
// offsets filled in, exactly the bytes a fetch would return. For a partition
// not hosted here the error wraps ErrNotHosted.
func (b *Broker) ReplicaRecords(topic string, part int32) ([]byte, ReplicaState, error) {
	r, _, code := b.lookup(topic, part)
	if r == nil {
		return nil, ReplicaState{}, fmt.Errorf("partition %s-%d is not hosted here (code %d): %w", topic, part, code, ErrNotHosted)
	}
	st, err := r.state()
	if err != nil {
		return nil, st, err
	}
	recs, err := b.readRecords(r, st.StartOffset, st.NextOffset, 1<<62, true)
	return recs, st, err
}

// HostedReplicas lists the replicas this broker hosts, sorted by topic and
// partition, each with its state at the moment it was read (the list is not
// one atomic snapshot: replicas keep applying while it is built).
func (b *Broker) HostedReplicas() ([]HostedReplica, error) {
	type hosted struct {
		topic string
		part  int32
		r     *replica
	}
	var rs []hosted
	b.mu.RLock()
	for topic, parts := range b.byName {
		for p, r := range parts {
			if r != nil {
				rs = append(rs, hosted{topic, int32(p), r})
			}
		}
	}
	b.mu.RUnlock()
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].topic != rs[j].topic {
			return rs[i].topic < rs[j].topic
		}
		return rs[i].part < rs[j].part
	})
	out := make([]HostedReplica, 0, len(rs))
	for _, h := range rs {
		st, err := h.r.state()
		if err != nil {
			return nil, fmt.Errorf("partition %s-%d: %w", h.topic, h.part, err)
		}
		out = append(out, HostedReplica{Topic: h.topic, Partition: h.part, ReplicaState: st})
	}
	return out, nil
}

// state reads the replica's role, offsets and first log index.
func (r *replica) state() (ReplicaState, error) {
	r.p.mu.RLock()
	st := ReplicaState{Leader: r.p.leader, Term: r.p.term, StartOffset: r.p.st.startOffset, NextOffset: r.p.st.nextOffset, ReadyTerm: r.p.readyTerm}
	r.p.mu.RUnlock()
	st.Serving = r.p.serving().ready
	st.Consensus = r.g.Status()
	first, err := r.log.FirstIndex()
	if err != nil {
		return st, err
	}
	st.FirstIndex = first
	return st, nil
}
