package etcd_test

import (
	"testing"

	"github.com/chronik-go/chronik/core/consensus/consensustest"
	"github.com/chronik-go/chronik/plugins/plugintest"
)

// The suite again with the engine as a plugin: served through the gRPC
// shim in this process, and by this test binary re-executed (TestMain).
func TestPluginModes(t *testing.T) {
	plugintest.RunConsensusModes(t, backend(), memStores, consensustest.Capabilities{})
}
