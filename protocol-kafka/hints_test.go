package kafka

import (
	"context"
	"testing"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// KIP-951: NOT_LEADER_OR_FOLLOWER answers carry the current leader (and
// its endpoint) in Produce v10+ and Fetch v12+ (endpoints v16+).
func TestLeaderHints(t *testing.T) {
	h := newTestHost()
	h.moved = map[string]bool{"m": true}
	h.mu.Lock()
	h.createLocked("m", 1, nil)
	h.mu.Unlock()
	s := startServer(t, h, nil)
	c := dial(t, s)

	p := produceReq(-1, "m", batch("a"))
	send(t, c, frame(p, 12, 1))
	pr := recv[*kmsg.ProduceResponse](t, c, p, 1)
	sp := pr.Topics[0].Partitions[0]
	if sp.ErrorCode != int16(protocol.ErrNotLeaderOrFollower) || sp.CurrentLeader.LeaderID != 2 || sp.CurrentLeader.LeaderEpoch != 7 {
		t.Fatalf("produce partition %+v", sp)
	}
	if len(pr.Brokers) != 1 || pr.Brokers[0].NodeID != 2 || pr.Brokers[0].Host != "127.0.0.2" || *pr.Brokers[0].Rack != "r2" {
		t.Fatalf("produce brokers %+v", pr.Brokers)
	}

	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "m"
	rt.Partitions = append(rt.Partitions, kmsg.NewFetchRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	send(t, c, frame(req, 12, 2))
	fr := recv[*kmsg.FetchResponse](t, c, req, 2)
	if fp := fr.Topics[0].Partitions[0]; fp.CurrentLeader.LeaderID != 2 || fp.CurrentLeader.LeaderEpoch != 7 || fp.HighWatermark != -1 {
		t.Fatalf("fetch v12 partition %+v", fp)
	}
	if len(fr.Brokers) != 0 {
		t.Fatalf("fetch v12 has broker endpoints %+v", fr.Brokers)
	}
}

func TestRequestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	h := newTestHost()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	srv, err := NewFactory().Create(context.Background(), component.Settings{MeterProvider: mp}, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	s := srv.(*Server)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c := dial(t, s)
	for i := range int32(3) {
		av := kmsg.NewPtrApiVersionsRequest()
		send(t, c, frame(av, 0, i))
		recv[*kmsg.ApiVersionsResponse](t, c, av, i)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var requests, durations int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name != "kafka.server.requests" {
					continue
				}
				for _, p := range d.DataPoints {
					if v, _ := p.Attributes.Value(attribute.Key("api")); v.AsString() == "ApiVersions" {
						requests += p.Value
					}
				}
			case metricdata.Histogram[float64]:
				if m.Name != "kafka.server.request.duration" {
					continue
				}
				for _, p := range d.DataPoints {
					durations += int64(p.Count)
				}
			}
		}
	}
	if requests != 3 || durations != 3 {
		t.Fatalf("requests %d, durations %d; want 3 and 3", requests, durations)
	}
}
