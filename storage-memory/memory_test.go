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

func BenchmarkStore(b *testing.B) {
	storagetest.RunBenchmarks(b, newHarness)
}

func TestFactory(t *testing.T) {
	f := memory.NewFactory()
	if f.Type() != "memory" {
		t.Errorf("Type = %q, want memory", f.Type())
	}
	cfg := f.DefaultConfig().(*memory.Config)
	cfg.MaxEntrySize = -1
	if _, err := f.Create(context.Background(), component.Settings{}, cfg); err == nil {
		t.Error("Create with a negative max_entry_size succeeded")
	}
	cfg.MaxEntrySize = 10
	s, err := f.Create(context.Background(), component.Settings{}, cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer s.Close()
	err = s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Entries: []storage.Entry{{Index: 1, Term: 1, Data: make([]byte, 11)}}}}, true)
	if storage.CodeOf(err) != storage.CodeTooLarge {
		t.Errorf("Write of an 11-byte entry with max_entry_size 10: %v, want code %v", err, storage.CodeTooLarge)
	}
	if l, _ := s.Log(1); l != nil {
		if last, _ := l.LastIndex(); last != 0 {
			t.Errorf("a rejected entry was stored: LastIndex = %d", last)
		}
	}
}
