// Package component holds what every swappable Chronik part shares: the
// settings a part is created with and the type name it is known by.
//
// Each kind of part (storage, consensus, protocol) defines its own sealed
// Factory interface in its own package, with a constructor such as
// storage.NewFactory; the chronik binary keeps the one static list of
// built-in factories (see cmd). A factory has a type name, a default config
// and a Create function; the config section of a part is unmarshalled over
// the factory's default config and then validated (Validate) before Create
// is called.
package component

import (
	"fmt"
	"log/slog"
	"regexp"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Type is the name a component is chosen by in the config, such as "wal".
type Type string

var typeRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Validate reports whether t is a well-formed type name.
func (t Type) Validate() error {
	if !typeRE.MatchString(string(t)) {
		return fmt.Errorf("component: invalid type name %q (want lower-case letters, digits, '-' or '_')", string(t))
	}
	return nil
}

// Config is a component's configuration: a pointer to a struct with koanf
// tags. A Config that implements Validator is validated before Create.
type Config any

// Validator is implemented by configs that can check themselves.
type Validator interface {
	Validate() error
}

// Validate calls cfg.Validate when cfg implements Validator.
func Validate(cfg Config) error {
	if v, ok := cfg.(Validator); ok {
		return v.Validate()
	}
	return nil
}

// Settings are what the host hands every component it creates.
type Settings struct {
	// Logger is the component's structured logger; never nil after
	// WithDefaults.
	Logger *slog.Logger
	// MeterProvider and TracerProvider are the OpenTelemetry providers.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// DataDir is the directory the component owns, if it keeps files.
	DataDir string

	_ struct{}
}

// WithDefaults returns s with nil fields replaced by no-op implementations.
func (s Settings) WithDefaults() Settings {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.MeterProvider == nil {
		s.MeterProvider = metricnoop.NewMeterProvider()
	}
	if s.TracerProvider == nil {
		s.TracerProvider = tracenoop.NewTracerProvider()
	}
	return s
}
