package storage

import (
	"context"

	"github.com/chronik-go/chronik/core/component"
)

// Factory builds a Store. It is sealed: only NewFactory makes one, so that
// the interface can grow without breaking implementations.
type Factory interface {
	Type() component.Type
	DefaultConfig() component.Config
	// Create opens the store in set.DataDir with cfg, a value obtained from
	// DefaultConfig and then overlaid and validated.
	Create(ctx context.Context, set component.Settings, cfg component.Config) (Store, error)
	sealed()
}

// CreateFunc opens a Store.
type CreateFunc func(ctx context.Context, set component.Settings, cfg component.Config) (Store, error)

// NewFactory returns a Factory for type t.
func NewFactory(t component.Type, defaults func() component.Config, create CreateFunc) Factory {
	return &factory{t: t, defaults: defaults, create: create}
}

type factory struct {
	t        component.Type
	defaults func() component.Config
	create   CreateFunc
}

func (f *factory) Type() component.Type            { return f.t }
func (f *factory) DefaultConfig() component.Config { return f.defaults() }
func (f *factory) sealed()                         {}

func (f *factory) Create(ctx context.Context, set component.Settings, cfg component.Config) (Store, error) {
	if err := component.Validate(cfg); err != nil {
		return nil, err
	}
	c, err := f.create(ctx, set.WithDefaults(), cfg)
	if err != nil {
		// Not a typed nil in a non-nil interface: callers test for nil
		// to know what to stop.
		return nil, err
	}
	return c, nil
}
