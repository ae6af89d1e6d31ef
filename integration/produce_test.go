package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newClient(t testing.TB, c *Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t testing.TB, c *Cluster, topic string, partitions int32, rf int16) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
}

// produceN produces n records round-robin over the topic's partitions and
// returns, per partition, the values in offset order as acknowledged.
func produceN(t testing.TB, cl *kgo.Client, topic string, n int) map[int32][]string {
	t.Helper()
	var mu sync.Mutex
	acked := map[int32]map[int64]string{}
	var wg sync.WaitGroup
	var failed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < n; i++ {
		wg.Add(1)
		v := fmt.Sprintf("v-%07d", i)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				if failed.Add(1) == 1 {
					t.Errorf("produce %s: %v", v, err)
				}
				return
			}
			mu.Lock()
			if acked[r.Partition] == nil {
				acked[r.Partition] = map[int64]string{}
			}
			if old, dup := acked[r.Partition][r.Offset]; dup {
				t.Errorf("offset %d of partition %d acknowledged twice: %s and %s", r.Offset, r.Partition, old, v)
			}
			acked[r.Partition][r.Offset] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	out := map[int32][]string{}
	for p, m := range acked {
		vals := make([]string, len(m))
		for off, v := range m {
			if off < 0 || off >= int64(len(m)) {
				t.Fatalf("partition %d: offset %d outside 0..%d: offsets are not gapless", p, off, len(m)-1)
			}
			vals[off] = v
		}
		out[p] = vals
	}
	return out
}

// consumeAll reads every partition from the start until it has want[p]
// records of each.
func consumeAll(t testing.TB, c *Cluster, topic string, want map[int32][]string) {
	t.Helper()
	cl := newClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	got := map[int32][]string{}
	total := 0
	for _, v := range want {
		total += len(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := 0
	for n < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", n, total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if int64(len(got[r.Partition])) != r.Offset {
				t.Fatalf("partition %d: record at offset %d after %d records", r.Partition, r.Offset, len(got[r.Partition]))
			}
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			n++
		})
	}
	for p, vals := range want {
		if len(got[p]) != len(vals) {
			t.Fatalf("partition %d: consumed %d records, want %d", p, len(got[p]), len(vals))
		}
		for i := range vals {
			if got[p][i] != vals[i] {
				t.Fatalf("partition %d offset %d: consumed %q, produced %q", p, i, got[p][i], vals[i])
			}
		}
	}
}

func TestProduceConsumeOneBroker(t *testing.T) {
	forEachBackendAndStore(t, testProduceConsumeOneBroker)
}

func testProduceConsumeOneBroker(t *testing.T, opts Options) {
	opts.Brokers = 1
	c := StartCluster(t, opts)
	checkPlugins(t, c)
	const topic = "orders"
	createTopic(t, c, topic, 6, 1)
	// CreateTopics answers once the new partitions have leaders: a
	// round-robin producer starting right away must find all six writable
	// (franz-go spreads records over the partitions that have leaders).
	md, err := kadm.NewClient(newClient(t, c)).Metadata(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics[topic].Partitions {
		if p.Leader < 0 || p.Err != nil {
			t.Errorf("partition %d right after CreateTopics: leader %d, %v", p.Partition, p.Leader, p.Err)
		}
	}
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	cl := newClient(t, c, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	acked := produceN(t, cl, topic, n)
	if len(acked) != 6 {
		t.Fatalf("records landed in %d partitions, want 6", len(acked))
	}
	consumeAll(t, c, topic, acked)
}
