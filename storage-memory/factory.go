package memory

import (
	"context"
	"fmt"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/storage"
)

// Type is the component type name of the in-memory store.
const Type component.Type = "memory"

// Config configures the in-memory store.
type Config struct {
	// MaxEntrySize is the largest entry Data, in bytes, the store accepts;
	// a Write carrying a larger one fails with storage.CodeTooLarge.
	// 0 means no limit.
	MaxEntrySize int `koanf:"max_entry_size"`

	_ struct{}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.MaxEntrySize < 0 {
		return fmt.Errorf("memory: max_entry_size %d is negative", c.MaxEntrySize)
	}
	return nil
}

// NewFactory returns the factory of the in-memory store. It ignores
// Settings.DataDir: the store keeps nothing on disk.
func NewFactory() storage.Factory {
	return storage.NewFactory(Type, func() component.Config { return &Config{} }, create)
}

func create(_ context.Context, _ component.Settings, cfg component.Config) (storage.Store, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("memory: config is %T, want *memory.Config", cfg)
	}
	return New(*c), nil
}
