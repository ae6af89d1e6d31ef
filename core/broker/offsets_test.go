package broker

import (
	"context"
	"reflect"
	"testing"

	"github.com/chronik-go/chronik/core/consensus"
)

func TestPartitionForIsKafkas(t *testing.T) {
	for _, tc := range []struct {
		s    string
		hash int32
	}{
		{"", 0},
		{"hello", 99162322},
		{"polygenelubricants", -1 << 31}, // Utils.abs maps MinInt32 to 0
		{"Aa", 2112},
		{"BB", 2112},
		{"é😀", 233*31*31 + 0xD83D*31 + 0xDE00}, // UTF-16 code units
	} {
		if got := javaStringHash(tc.s); got != tc.hash {
			t.Errorf("javaStringHash(%q) = %d, want %d", tc.s, got, tc.hash)
		}
	}
	if p := partitionFor("polygenelubricants", 50); p != 0 {
		t.Errorf("partitionFor(MinInt32 hash) = %d, want 0", p)
	}
	if p := partitionFor("hello", 50); p != 99162322%50 {
		t.Errorf("partitionFor(hello) = %d", p)
	}
}

// TestOffsetsMaterializeDeterministically: commits, group metadata and
// tombstones applied in one go or one entry at a time give the same state.
func TestOffsetsMaterializeDeterministically(t *testing.T) {
	leader := "m1"
	proto := "range"
	meta := &storedGroupMeta{protocolType: "consumer", generation: 3, protocol: &proto, leader: &leader, stateTS: 5,
		members: []storedMember{{memberID: "m1", clientID: "c", clientHost: "/127.0.0.1", rebalanceTimeout: 60000, sessionTimeout: 45000, subscription: []byte{0, 1}, assignment: []byte{0, 2}}}}
	commit := func(g, topic string, p int32, off int64) record {
		return record{key: offsetKey(g, topic, p), value: encodeOffsetValue(storedOffset{offset: off, leaderEpoch: 1, metadata: "md", commitTS: 7})}
	}
	entries := []consensus.Entry{
		recordsEntry(1, 1, buildBatch([]record{commit("g1", "t", 0, 10), commit("g1", "t", 1, 20), commit("g2", "t", 0, 5)}, 100)),
		recordsEntry(2, 1, buildBatch([]record{{key: groupKey("g1"), value: encodeGroupMeta(meta)}}, 101)),
		recordsEntry(3, 1, buildBatch([]record{commit("g1", "t", 0, 11), {key: offsetKey("g1", "t", 1)}}, 102)),
		recordsEntry(4, 1, buildBatch([]record{{key: groupKey("g2")}, {key: offsetKey("g2", "t", 0)}}, 103)),
	}
	a := newPartition(OffsetsTopic, 0, 1000, 1)
	if err := a.Apply(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	b := newPartition(OffsetsTopic, 0, 1000, 1)
	for _, e := range entries {
		applyOne(t, b, e)
	}
	if !reflect.DeepEqual(a.st.groups, b.st.groups) {
		t.Fatalf("replicas differ:\n%+v\n%+v", a.st.groups, b.st.groups)
	}
	g1 := a.storedGroup("g1")
	if g1 == nil || len(g1.offsets) != 1 || g1.offsets[topicPartition{"t", 0}].offset != 11 || g1.offsets[topicPartition{"t", 0}].leaderEpoch != 1 {
		t.Fatalf("g1: %+v", g1)
	}
	if !reflect.DeepEqual(g1.meta, meta) {
		t.Fatalf("g1 metadata: %+v, want %+v", g1.meta, meta)
	}
	if g2 := a.storedGroup("g2"); g2 != nil {
		t.Fatalf("g2 survives its tombstones: %+v", g2)
	}
	if names := a.storedGroupNames(); !reflect.DeepEqual(names, []string{"g1"}) {
		t.Fatalf("groups: %v", names)
	}
	// __consumer_offsets is never truncated: its state needs the whole log.
	a.mu.Lock()
	a.applyTruncate(3)
	start := a.st.startOffset
	a.mu.Unlock()
	if start != 0 {
		t.Fatalf("__consumer_offsets truncated to %d", start)
	}
}
