package plugins_test

import (
	"os"
	"testing"

	"github.com/chronik-go/chronik/core/storage/storagetest"
	"github.com/chronik-go/chronik/plugins/plugintest"
	memory "github.com/chronik-go/chronik/storage-memory"
	wal "github.com/chronik-go/chronik/storage-wal"
)

func TestMain(m *testing.M) {
	plugintest.ServeIfChild(memory.NewFactory(), wal.NewFactory())
	os.Exit(m.Run())
}

// walSection is the WAL's config section in these tests: small segments,
// passed to the plugin as a broker would.
var walSection = map[string]any{"segment_size": 4 << 20}

func TestStorageModes(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		plugintest.RunStorageModes(t, memory.NewFactory(), nil, storagetest.Capabilities{})
	})
	t.Run("wal", func(t *testing.T) {
		caps := storagetest.Capabilities{Persistent: true, MaxEntrySize: 4<<20 - 64<<10}
		plugintest.RunStorageModes(t, wal.NewFactory(), walSection, caps)
	})
}
