package pebblestore

import (
	"context"
	"fmt"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/storage"
)

// Type is the component type name of the Pebble store.
const Type component.Type = "pebble"

// Config configures the Pebble store.
type Config struct {
	// CacheSize is the size in bytes of Pebble's block cache, which holds
	// uncompressed blocks of its sstables: entries that were flushed out of
	// the memtables are read through it.
	CacheSize int64 `koanf:"cache_size"`
	// MemTableSize is the size in bytes of one Pebble memtable. Writes go to
	// the write-ahead log and a memtable; a full memtable is flushed to an
	// sstable in the background. Larger memtables let more entries be
	// truncated before they are ever flushed. A Write larger than half of
	// it bypasses the memtable (Pebble's large-batch path).
	MemTableSize int64 `koanf:"memtable_size"`
	// Sync makes Writes with sync=true (and Drops) wait for an fsync of
	// Pebble's write-ahead log, shared by concurrent writers (default true).
	// Set it to false only for tests and throwaway brokers: then nothing
	// waits for an fsync and a crash (of the machine, not of the process)
	// may lose writes that returned.
	Sync bool `koanf:"sync"`

	_ struct{}
}

// Bounds of the sizes in Config.
const (
	MinCacheSize    = 1 << 20
	MinMemTableSize = 1 << 20
	MaxMemTableSize = 1 << 31 // Pebble wants less than 4 GiB; keep well below
)

// DefaultConfig returns the defaults: a 64 MiB block cache, 64 MiB
// memtables, sync on.
func DefaultConfig() *Config {
	return &Config{
		CacheSize:    64 << 20,
		MemTableSize: 64 << 20,
		Sync:         true,
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.CacheSize < MinCacheSize {
		return fmt.Errorf("pebble: cache_size %d is below the minimum of %d bytes (1 MiB)", c.CacheSize, MinCacheSize)
	}
	if c.MemTableSize < MinMemTableSize || c.MemTableSize > MaxMemTableSize {
		return fmt.Errorf("pebble: memtable_size %d out of range [%d, %d] bytes (1 MiB to 2 GiB)", c.MemTableSize, MinMemTableSize, MaxMemTableSize)
	}
	return nil
}

// NewFactory returns the factory of the Pebble store, which opens the store
// in Settings.DataDir.
func NewFactory() storage.Factory {
	return storage.NewFactory(Type, func() component.Config { return DefaultConfig() }, create)
}

func create(ctx context.Context, set component.Settings, cfg component.Config) (storage.Store, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("pebble: config is %T, want *pebblestore.Config", cfg)
	}
	if set.DataDir == "" {
		return nil, fmt.Errorf("pebble: no data directory (Settings.DataDir is empty)")
	}
	s, err := Open(ctx, set.DataDir, *c, set.Logger)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return s, nil
}
