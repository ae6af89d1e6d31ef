package etcd_test

import (
	"context"
	"testing"

	etcd "github.com/chronik-go/chronik/consensus-etcd"
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus/consensustest"
	"github.com/chronik-go/chronik/core/storage"
	wal "github.com/chronik-go/chronik/storage-wal"
)

// TestFootprint logs goroutines, memory and idle CPU per broker for this
// backend on WAL stores; consensus-hashicorp runs the same measurement.
//
//	go test -run TestFootprint -v .   (not with -short or -race)
func TestFootprint(t *testing.T) {
	consensustest.RunFootprint(t, etcd.NewFactory(), func(t *testing.T) storage.Store {
		sf := wal.NewFactory()
		scfg := sf.DefaultConfig().(*wal.Config)
		scfg.SegmentSize = 4 << 20 // 1,500 logs: keep preallocation small
		st, err := sf.Create(context.Background(), component.Settings{DataDir: t.TempDir()}, scfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}
