package memory_test

import (
	"context"
	"testing"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/storage/storagetest"
	memory "github.com/chronik-go/chronik/storage-memory"
)

// harness opens a new, empty store each time: the memory store is not
// persistent.
type harness struct{}

func (harness) Open(ctx context.Context) (storage.Store, error) {
	f := memory.NewFactory()
	return f.Create(ctx, component.Settings{}, f.DefaultConfig())
}

func (harness) Close() {}

func newHarness(context.Context, testing.TB) (storagetest.Harness, error) { return harness{}, nil }

func TestConformance(t *testing.T) {
	storagetest.RunConformanceTests(t, newHarness, storagetest.Capabilities{})
}
