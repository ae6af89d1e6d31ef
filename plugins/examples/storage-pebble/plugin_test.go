package pebblestore

import (
	"testing"

	"github.com/chronik-go/chronik/core/storage/storagetest"
	"github.com/chronik-go/chronik/plugins/plugintest"
)

// TestPluginModes runs the conformance suite on the store served as a
// plugin: through the gRPC shim in this process, and as a subprocess (this
// test binary re-executed), with the config section a broker would pass.
func TestPluginModes(t *testing.T) {
	section := map[string]any{"cache_size": 8 << 20, "memtable_size": 4 << 20}
	plugintest.RunStorageModes(t, NewFactory(), section, storagetest.Capabilities{Persistent: true, MaxEntrySize: 16 << 20})
}
