package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer starts a server on a free loopback port over h, shut down at
// the end of the test.
func startServer(t *testing.T, h *testHost, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	if mod != nil {
		mod(cfg)
	}
	srv, err := NewFactory().Create(context.Background(), component.Settings{}, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	s := srv.(*Server)
	h.setAddr(s.Addr())
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

func newClient(t *testing.T, s *Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Type() != "kafka" {
		t.Fatalf("type %q", f.Type())
	}
	cfg := f.DefaultConfig().(*Config)
	if cfg.Listen != "127.0.0.1:9092" || cfg.MaxRequestBytes != 100<<20 {
		t.Fatalf("defaults %+v", cfg)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Listen = "nope" },
		func(c *Config) { c.MaxRequestBytes = 3 },
		func(c *Config) { c.MaxInFlight = 0 },
		func(c *Config) { c.MaxConnections = -1 },
	} {
		c := DefaultConfig()
		bad(c)
		if _, err := f.Create(context.Background(), component.Settings{}, c, newTestHost()); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}

func TestProduceConsume(t *testing.T) {
	h := newTestHost()
	s := startServer(t, h, nil)
	ctx := context.Background()

	adm := kadm.NewClient(newClient(t, s))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}

	// Idempotent by default: InitProducerID, then Produce v9+ with
	// pipelined requests per partition.
	prod := newClient(t, s, kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 300
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 3)), Value: []byte(fmt.Sprint(i))}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %s: %v", r.Value, err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if h.produceCalls() == 0 {
		t.Fatal("host saw no produce")
	}

	cons := newClient(t, s, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := map[int32]int64{}
	got := 0
	deadline, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for got < n {
		fs := cons.PollFetches(deadline)
		if err := deadline.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			got++
		})
	}

	ends, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("end offset %d: %v", o.Partition, o.Err)
		}
		sum += o.Offset
	})
	if sum != n {
		t.Fatalf("end offsets sum to %d, want %d", sum, n)
	}
	starts, err := adm.ListStartOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset != 0 {
			t.Errorf("start offset %d: %d %v", o.Partition, o.Offset, o.Err)
		}
	})
}

func TestAdmin(t *testing.T) {
	h := newTestHost()
	s := startServer(t, h, nil)
	ctx := context.Background()
	adm := kadm.NewClient(newClient(t, s))

	retention := "3600000"
	created, err := adm.CreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": &retention}, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range created {
		if c.Err != nil || c.NumPartitions != 2 || c.Configs["retention.ms"].Value == nil || c.ID == (kadm.TopicID{}) {
			t.Fatalf("created %+v", c)
		}
	}
	if res, _ := adm.CreateTopic(ctx, 1, 1, nil, "a"); res.Err == nil {
		t.Fatal("creating an existing topic: no error")
	}
	if res, _ := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); res.Err == nil {
		t.Fatal("creating an illegal name: no error")
	}

	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.Cluster != "test-cluster" || md.Controller != 1 || len(md.Brokers) != 1 || len(md.Topics) != 2 {
		t.Fatalf("metadata %+v", md)
	}
	if td := md.Topics["a"]; len(td.Partitions) != 2 || td.Partitions[1].Leader != 1 || td.ID != created["a"].ID {
		t.Fatalf("topic a %+v", td)
	}

	cfgs, err := adm.DescribeTopicConfigs(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On("a", nil)
	if err != nil || rc.Err != nil {
		t.Fatal(err, rc.Err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.Value != nil && *c.Value == retention && c.Source == 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("configs %+v", rc.Configs)
	}

	if _, err := adm.CreatePartitions(ctx, 2, "b"); err != nil {
		t.Fatal(err)
	}
	md, err = adm.Metadata(ctx, "b")
	if err != nil || len(md.Topics["b"].Partitions) != 4 {
		t.Fatalf("after CreatePartitions: %v %+v", err, md.Topics["b"])
	}

	del, err := adm.DeleteTopics(ctx, "a", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if del["a"].Err != nil || del["missing"].Err == nil {
		t.Fatalf("delete %+v", del)
	}
	// A fresh client: kgo caches metadata responses briefly.
	names, err := kadm.NewClient(newClient(t, s)).ListTopics(ctx)
	if err != nil || len(names) != 1 || !names.Has("b") {
		t.Fatalf("topics after delete: %v %v", names.Names(), err)
	}

	bm, err := adm.BrokerMetadata(ctx)
	if err != nil || bm.Cluster != "test-cluster" || len(bm.Brokers) != 1 {
		t.Fatalf("broker metadata %+v %v", bm, err)
	}
}
