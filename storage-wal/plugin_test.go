package wal

import (
	"testing"

	"github.com/chronik-go/chronik/core/storage/storagetest"
	"github.com/chronik-go/chronik/plugins/plugintest"
)

// TestPluginModes runs the conformance suite on the store served as a
// plugin: through the gRPC shim in this process, and as a subprocess (this
// test binary re-executed), with the config section a broker would pass.
func TestPluginModes(t *testing.T) {
	cfg := testConfig(4 << 20)
	section := map[string]any{"segment_size": cfg.SegmentSize}
	plugintest.RunStorageModes(t, NewFactory(), section, storagetest.Capabilities{Persistent: true, MaxEntrySize: cfg.MaxEntrySize()})
}
