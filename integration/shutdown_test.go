package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
)

// TestGracefulShutdownHandsOff: a broker stopped cleanly (SIGTERM) hands the
// leadership of its partitions to another replica before it stops: when Stop
// returns, another broker already leads each partition (after a crash, none
// would until an election timeout had passed). The other followers may learn
// of the new leader a moment later, so only the new leader's own view counts.
func TestGracefulShutdownHandsOff(t *testing.T) { forEachBackend(t, testGracefulShutdownHandsOff) }

func testGracefulShutdownHandsOff(t *testing.T, consensus component.Type) {
	c := StartCluster(t, Options{Brokers: 3, Consensus: consensus})
	const topic = "handoff"
	createTopic(t, c, topic, 3, 3)
	for p := int32(0); p < 3; p++ {
		leaderOf(t, c, topic, p)
	}
	waitHosted(t, c, topic, 3)
	victim := leaderOf(t, c, topic, 0)
	c.Stop(int(victim - 1))
	for p := int32(0); p < 3; p++ {
		var leaders []int32
		for i := 0; i < c.Size(); i++ {
			n := c.Node(i)
			if n == nil {
				continue
			}
			_, st, err := n.Broker.ReplicaRecords(topic, p)
			if err != nil {
				t.Fatal(err)
			}
			if int32(st.Leader) == int32(i+1) {
				leaders = append(leaders, int32(st.Leader))
			}
		}
		if len(leaders) != 1 {
			t.Errorf("partition %d: %d brokers lead it right after broker %d stopped; want exactly one", p, len(leaders), victim)
		}
	}
}

// waitHosted waits until every live broker hosts its replica of each of the
// topic's partitions.
func waitHosted(t testing.TB, c *Cluster, topic string, partitions int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := ""
		for i := 0; i < c.Size() && missing == ""; i++ {
			n := c.Node(i)
			if n == nil {
				continue
			}
			for p := int32(0); p < partitions; p++ {
				if _, _, err := n.Broker.ReplicaRecords(topic, p); err != nil {
					missing = fmt.Sprintf("broker %d: %v", i+1, err)
					break
				}
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas not started: %s", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
