package integration

import (
	"testing"

	"github.com/chronik-go/chronik/core/component"
)

// TestGracefulShutdownHandsOff: a broker stopped cleanly (SIGTERM) hands the
// leadership of its partitions to another replica before it stops, so the
// others have a new leader the moment it is gone, with no election timeout.
func TestGracefulShutdownHandsOff(t *testing.T) { forEachBackend(t, testGracefulShutdownHandsOff) }

func testGracefulShutdownHandsOff(t *testing.T, consensus component.Type) {
	c := StartCluster(t, Options{Brokers: 3, Consensus: consensus})
	const topic = "handoff"
	createTopic(t, c, topic, 3, 3)
	victim := leaderOf(t, c, topic, 0)
	c.Stop(int(victim - 1))
	for i := 0; i < c.Size(); i++ {
		n := c.Node(i)
		if n == nil {
			continue
		}
		for p := int32(0); p < 3; p++ {
			_, st, err := n.Broker.ReplicaRecords(topic, p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Leader == 0 || int32(st.Leader) == victim {
				t.Errorf("broker %d, partition %d: leader %d right after broker %d stopped; want another broker", i+1, p, st.Leader, victim)
			}
		}
	}
}
