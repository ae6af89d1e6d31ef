package memory

import (
	"os"
	"testing"

	"github.com/chronik-go/chronik/core/storage/storagetest"
	"github.com/chronik-go/chronik/plugins/plugintest"
)

func TestMain(m *testing.M) {
	// The subprocess mode of TestPluginModes re-executes this binary as
	// the plugin.
	plugintest.ServeIfChild(NewFactory())
	os.Exit(m.Run())
}

// TestPluginModes runs the conformance suite on the store served as a
// plugin: through the gRPC shim in this process, and as a subprocess.
func TestPluginModes(t *testing.T) {
	plugintest.RunStorageModes(t, NewFactory(), map[string]any{"max_entry_size": 0}, storagetest.Capabilities{})
}
