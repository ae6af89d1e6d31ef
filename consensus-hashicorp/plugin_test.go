package hashicorp_test

import (
	"testing"

	"github.com/chronik-go/chronik/core/consensus/consensustest"
	"github.com/chronik-go/chronik/plugins/plugintest"
)

// The suite again with the engine as a plugin: served through the gRPC
// shim in this process, and by this test binary re-executed (TestMain).
// ManyGroups starts 60 groups instead of 200: 200 hashicorp/raft instances
// on each of 3 nodes (several goroutines and timers each), with the
// plugin protocol's servers and clients in the same race-instrumented
// process on 2 cores, left elections of the last groups short of the
// suite's 40 s bound in one CI run.
func TestPluginModes(t *testing.T) {
	plugintest.RunConsensusModes(t, backend(), memStores, consensustest.Capabilities{ManyGroups: 60})
}
