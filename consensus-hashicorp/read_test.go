package hashicorp

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestAcksCountOnlyRequestsAfterTheFence: a ReadBarrier round counts a
// follower only for an answer, at the round's term, to a request sent
// after the round began; an answer to an older request (a leader resuming
// from SIGSTOP finds its followers' old answers waiting) or at another
// term does not count.
func TestAcksCountOnlyRequestsAfterTheFence(t *testing.T) {
	var a acks
	self, f2, f3 := addr(1), addr(2), addr(3)
	voters := []raft.ServerAddress{self, f2, f3}
	const term = 7

	old2, old3 := a.next(), a.next() // heartbeats in flight when the round starts
	fence := a.next()
	a.note(f2, term, old2)
	a.note(f3, term, old3)
	if a.quorum(voters, self, term, fence) {
		t.Fatal("answers to requests sent before the fence made a quorum")
	}
	fresh := a.next()
	a.note(f2, term+1, fresh) // f2 answers at a later term: it follows another leader
	if a.quorum(voters, self, term, fence) {
		t.Fatal("an answer at another term counted")
	}
	fresh3 := a.next()
	a.note(f3, term, fresh3)
	if !a.quorum(voters, self, term, fence) {
		t.Fatal("self and a fresh answer at the term are a majority of three, not counted")
	}
	if a.quorum([]raft.ServerAddress{self, f2, f3, addr(4), addr(5)}, self, term, fence) {
		t.Fatal("two of five counted as a quorum")
	}
}
