package integration

import (
	"net"
	"strings"
	"testing"

	"github.com/chronik-go/chronik/core/component"
)

// TestStartFailsCleanly: a broker that cannot start its consensus engine
// (its Raft address is taken) fails with an error naming the engine and
// stops what it had opened. It used to panic: the engine factory returned a
// typed nil inside a non-nil interface, which the node then shut down.
func TestStartFailsCleanly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, consensus component.Type) {
		c := StartCluster(t, Options{Brokers: 1, Consensus: consensus})
		c.Kill(0)
		l, err := net.Listen("tcp", c.cfgs[0].Cluster.Listen)
		if err != nil {
			t.Skipf("cannot take the Raft address back to block it: %v", err)
		}
		err = c.start(0)
		l.Close()
		if err == nil {
			t.Fatal("broker started with its Raft address taken")
		}
		if !strings.Contains(err.Error(), "consensus "+string(consensus)) {
			t.Errorf("error does not name the consensus engine: %v", err)
		}
		// The store was closed on the way out: the broker starts again on it.
		if err := c.start(0); err != nil {
			t.Fatalf("restart after the failed start: %v", err)
		}
	})
}
