// Package telemetry sets up what a Chronik process reports about itself: a
// structured logger (log/slog), an OpenTelemetry MeterProvider whose metrics
// are served in the Prometheus text format over HTTP, and a TracerProvider
// that exports spans over OTLP/HTTP when an endpoint is configured.
//
// The caller creates one Telemetry per process with New, hands
// Telemetry.Settings to every component it creates, and calls Shutdown last,
// after every component is stopped, so that their final metrics and spans
// are flushed.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/chronik-go/chronik/core/component"
)

// Config is the `telemetry` section of the Chronik config.
type Config struct {
	// PrometheusListen is the host:port of the HTTP server that serves
	// metrics at /metrics in the Prometheus text format; empty disables it.
	PrometheusListen string `koanf:"prometheus_listen"`
	// LogLevel is the lowest level logged: debug, info, warn or error.
	LogLevel string `koanf:"log_level"`
	// LogFormat is the log line format on stderr: text or json.
	LogFormat string `koanf:"log_format"`
	// OTLPEndpoint is the OTLP/HTTP URL traces are exported to, such as
	// http://127.0.0.1:4318; empty exports no traces.
	OTLPEndpoint string `koanf:"otlp_endpoint"`
	// Debug serves /debug/chronik/... on the metrics listener: replica
	// states and contents, for fault-injection checks that compare replicas,
	// and the Go runtime profiles under /debug/pprof/. It exposes record
	// data without any authorization, so leave it off in production.
	// It needs prometheus_listen.
	Debug bool `koanf:"debug"`

	_ struct{}
}

// DefaultConfig returns the telemetry defaults.
func DefaultConfig() Config {
	return Config{
		PrometheusListen: "127.0.0.1:9464",
		LogLevel:         "info",
		LogFormat:        "text",
	}
}

// Validate checks the config; each error names the key at fault.
func (c *Config) Validate() error {
	var errs []error
	if c.PrometheusListen != "" {
		if _, _, err := net.SplitHostPort(c.PrometheusListen); err != nil {
			errs = append(errs, fmt.Errorf("telemetry.prometheus_listen %q: %w", c.PrometheusListen, err))
		}
	} else if c.Debug {
		errs = append(errs, errors.New("telemetry.debug: needs telemetry.prometheus_listen, whose listener serves it"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("telemetry.log_level: %w", err))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("telemetry.log_format %q: want text or json", c.LogFormat))
	}
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("telemetry.otlp_endpoint %q: want an http:// or https:// URL", c.OTLPEndpoint))
		}
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", s)
}

// Options are what the process tells New besides the config.
type Options struct {
	// LogOutput receives log lines; nil means os.Stderr.
	LogOutput io.Writer
	// ServiceName and ServiceInstance describe the process in the
	// OpenTelemetry resource ("chronik" and the node id, typically).
	ServiceName     string
	ServiceInstance string

	_ struct{}
}

// Telemetry is the process's logger and OpenTelemetry providers. Its
// exported fields are never nil.
type Telemetry struct {
	Logger         *slog.Logger
	MeterProvider  *sdkmetric.MeterProvider
	TracerProvider trace.TracerProvider

	sdkTracer *sdktrace.TracerProvider // nil when no traces are exported
	server    *http.Server             // nil when prometheus_listen is empty
	mux       *http.ServeMux           // the server's handlers; nil with server
	served    chan error               // the server goroutine's result
	addr      string
}

// New validates cfg and starts telemetry: it binds prometheus_listen (so
// that a port in use is reported here, not later) and serves /metrics on it
// until Shutdown.
func New(ctx context.Context, cfg Config, opts Options) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	level, _ := parseLevel(cfg.LogLevel)
	out := opts.LogOutput
	if out == nil {
		out = os.Stderr
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(out, hopts)
	} else {
		h = slog.NewTextHandler(out, hopts)
	}
	t := &Telemetry{Logger: slog.New(h)}

	name := opts.ServiceName
	if name == "" {
		name = "chronik"
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if opts.ServiceInstance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", opts.ServiceInstance))
	}
	res := resource.NewSchemaless(attrs...)

	reg := promclient.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	t.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))

	if cfg.OTLPEndpoint != "" {
		te, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.OTLPEndpoint))
		if err != nil {
			_ = t.MeterProvider.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: otlp exporter %s: %w", cfg.OTLPEndpoint, err)
		}
		t.sdkTracer = sdktrace.NewTracerProvider(sdktrace.WithBatcher(te), sdktrace.WithResource(res))
		t.TracerProvider = t.sdkTracer
	} else {
		t.TracerProvider = tracenoop.NewTracerProvider()
	}

	if cfg.PrometheusListen != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", cfg.PrometheusListen)
		if err != nil {
			_ = t.shutdownProviders(ctx)
			return nil, fmt.Errorf("telemetry: prometheus_listen: %w", err)
		}
		t.mux = http.NewServeMux()
		t.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		t.server = &http.Server{Handler: t.mux, ReadHeaderTimeout: 10 * time.Second}
		t.addr = ln.Addr().String()
		t.served = make(chan error, 1)
		go func() { t.served <- t.server.Serve(ln) }()
	}
	return t, nil
}

// MetricsAddr is the address /metrics is served on ("" when disabled); with
// port 0 in the config it tells the port picked.
func (t *Telemetry) MetricsAddr() string { return t.addr }

// Handle serves h at pattern (an http.ServeMux pattern, such as
// "GET /debug/x") on the metrics listener, beside /metrics. It may be called
// while the server runs, from any goroutine; it does nothing when
// prometheus_listen is empty. Like http.ServeMux.Handle it panics on an
// invalid pattern or one that conflicts with a registered one: patterns are
// the caller's constants, not input.
func (t *Telemetry) Handle(pattern string, h http.Handler) {
	if t.mux != nil {
		t.mux.Handle(pattern, h)
	}
}

// Settings returns the component.Settings for one component: the logger
// tagged with the component's name, the providers and dataDir.
func (t *Telemetry) Settings(name, dataDir string) component.Settings {
	return component.Settings{
		Logger:         t.Logger.With("component", name),
		MeterProvider:  t.MeterProvider,
		TracerProvider: t.TracerProvider,
		DataDir:        dataDir,
	}
}

// Shutdown stops the metrics server and flushes and stops the providers.
// Call it once, last.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.server != nil {
		if err := t.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: metrics server: %w", err))
		}
		if err := <-t.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("telemetry: metrics server: %w", err))
		}
	}
	errs = append(errs, t.shutdownProviders(ctx))
	return errors.Join(errs...)
}

func (t *Telemetry) shutdownProviders(ctx context.Context) error {
	var errs []error
	if err := t.MeterProvider.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: meter provider: %w", err))
	}
	if t.sdkTracer != nil {
		if err := t.sdkTracer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: tracer provider: %w", err))
		}
	}
	return errors.Join(errs...)
}
