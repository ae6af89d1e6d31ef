package broker

import (
	"fmt"

	"github.com/chronik-go/chronik/core/consensus"
)

// ReplicaState describes this broker's replica of a partition, whatever its
// role: for tests and the durability checker, which compare replicas.
type ReplicaState struct {
	Leader      consensus.NodeID
	Term        uint64
	StartOffset int64
	NextOffset  int64  // the replica's applied end: the high watermark on the leader
	FirstIndex  uint64 // the first Raft index the replica's store still holds
}

// ReplicaRecords reads this broker's own replica of a partition (leader or
// not) from its log start to its applied end: whole batches with their
// offsets filled in, exactly the bytes a fetch would return.
func (b *Broker) ReplicaRecords(topic string, part int32) ([]byte, ReplicaState, error) {
	r, _, code := b.lookup(topic, part)
	if r == nil {
		return nil, ReplicaState{}, fmt.Errorf("partition %s-%d is not hosted here (code %d)", topic, part, code)
	}
	r.p.mu.RLock()
	st := ReplicaState{Leader: r.p.leader, Term: r.p.term, StartOffset: r.p.st.startOffset, NextOffset: r.p.st.nextOffset}
	r.p.mu.RUnlock()
	first, err := r.log.FirstIndex()
	if err != nil {
		return nil, st, err
	}
	st.FirstIndex = first
	recs, err := b.readRecords(r, st.StartOffset, st.NextOffset, 1<<62, true)
	return recs, st, err
}
