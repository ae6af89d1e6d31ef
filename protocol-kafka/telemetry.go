package kafka

import (
	"context"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const scope = "github.com/chronik-go/chronik/protocol-kafka"

// telemetry holds the server's instruments.
//
//   - kafka.server.requests{api, version, outcome}: requests handled;
//     outcome is ok, error (connection closed), panic, canceled or
//     unsupported_version (the KIP-511 ApiVersions answer).
//   - kafka.server.request.duration{api}: seconds from decode to response.
//   - kafka.server.connections: open connections.
//   - kafka.server.connection.errors{reason}: connections closed for a
//     protocol error (frame_size, unknown_key, unsupported_version,
//     malformed) or refused (max_connections).
type telemetry struct {
	tracer   trace.Tracer
	requests metric.Int64Counter
	duration metric.Float64Histogram
	conns    metric.Int64UpDownCounter
	connErrs metric.Int64Counter
	apiAttrs [kmsg.MaxKey + 1]attribute.KeyValue
}

func newTelemetry(set component.Settings) (*telemetry, error) {
	m := set.MeterProvider.Meter(scope)
	t := &telemetry{tracer: set.TracerProvider.Tracer(scope)}
	var err error
	if t.requests, err = m.Int64Counter("kafka.server.requests",
		metric.WithDescription("Kafka requests handled, by API, version and outcome."),
		metric.WithUnit("{request}")); err != nil {
		return nil, err
	}
	if t.duration, err = m.Float64Histogram("kafka.server.request.duration",
		metric.WithDescription("Time to handle a Kafka request, by API."),
		metric.WithUnit("s")); err != nil {
		return nil, err
	}
	if t.conns, err = m.Int64UpDownCounter("kafka.server.connections",
		metric.WithDescription("Open Kafka client connections."),
		metric.WithUnit("{connection}")); err != nil {
		return nil, err
	}
	if t.connErrs, err = m.Int64Counter("kafka.server.connection.errors",
		metric.WithDescription("Kafka connections closed or refused for a protocol error, by reason."),
		metric.WithUnit("{connection}")); err != nil {
		return nil, err
	}
	for k := range t.apiAttrs {
		t.apiAttrs[k] = attribute.String("api", kmsg.NameForKey(int16(k)))
	}
	return t, nil
}

func (t *telemetry) apiAttr(key int16) attribute.KeyValue {
	if key < 0 || int(key) >= len(t.apiAttrs) {
		return attribute.String("api", "Unknown")
	}
	return t.apiAttrs[key]
}

func (t *telemetry) request(key, version int16, d time.Duration, outcome string) {
	ctx := context.Background()
	a := t.apiAttr(key)
	t.requests.Add(ctx, 1, metric.WithAttributes(a, attribute.Int("version", int(version)), attribute.String("outcome", outcome)))
	t.duration.Record(ctx, d.Seconds(), metric.WithAttributes(a))
}

func (t *telemetry) connOpened() { t.conns.Add(context.Background(), 1) }
func (t *telemetry) connClosed() { t.conns.Add(context.Background(), -1) }

func (t *telemetry) connError(reason string) {
	t.connErrs.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
}

func (t *telemetry) startSpan(ctx context.Context, name string, version int16) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, "kafka."+name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Int("kafka.api_version", int(version))))
}
