package consensus

import (
	"context"

	"github.com/chronik-go/chronik/core/component"
)

// Factory builds an Engine. It is sealed: only NewFactory makes one.
type Factory interface {
	Type() component.Type
	DefaultConfig() component.Config
	Create(ctx context.Context, set component.Settings, cfg component.Config, p Params) (Engine, error)
	sealed()
}

// CreateFunc starts an Engine.
type CreateFunc func(ctx context.Context, set component.Settings, cfg component.Config, p Params) (Engine, error)

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

func (f *factory) Create(ctx context.Context, set component.Settings, cfg component.Config, p Params) (Engine, error) {
	if err := component.Validate(cfg); err != nil {
		return nil, err
	}
	c, err := f.create(ctx, set.WithDefaults(), cfg, p)
	if err != nil {
		// Not a typed nil in a non-nil interface: callers test for nil
		// to know what to stop.
		return nil, err
	}
	return c, nil
}
