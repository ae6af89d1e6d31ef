package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkGroup measures, on 3 in-process brokers with a 12-partition
// topic holding 1M records of 100 bytes:
//
//   - rebalance-ms: a 3-member kgo group (cooperative-sticky, kgo's
//     default 3 s heartbeat interval) on another 12-partition topic that a
//     producer keeps writing to: from the third member's start to its first
//     fetched record, while two members consume;
//   - records/s: 3 members started together consume everything (join
//     included), committing with kgo's default autocommit. With no initial
//     rebalance delay the first member to join holds every partition until
//     the others join, so this is close to one consumer's rate.
//
// Run once: go test -run '^$' -bench BenchmarkGroup -benchtime 1x ./integration
func BenchmarkGroup(b *testing.B) {
	c := StartCluster(b, groupOptions(3))
	const topic, partitions, n = "bench-group", 12, 1_000_000
	createTopic(b, c, topic, partitions, 3)
	const rtopic = "bench-rebalance"
	createTopic(b, c, rtopic, partitions, 3)
	prod := newClient(b, c, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	value := make([]byte, 100)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		prod.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d produces failed", failed.Load())
	}
	b.ResetTimer()
	for range b.N {
		// Rebalance: two members consume, a third joins.
		var total atomic.Int64
		member := func(group, topic string, first *atomic.Int64) (*kgo.Client, chan struct{}) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					fs := cl.PollFetches(context.Background())
					if fs.IsClientClosed() {
						return
					}
					k := int64(fs.NumRecords())
					if k > 0 && first != nil {
						first.CompareAndSwap(0, time.Now().UnixNano())
					}
					total.Add(k)
				}
			}()
			return cl, done
		}
		// A producer keeps records coming to the rebalance topic, so the
		// third member has something to fetch whatever it is assigned.
		stop := make(chan struct{})
		prodDone := make(chan struct{})
		go func() {
			defer close(prodDone)
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				prod.Produce(context.Background(), &kgo.Record{Topic: rtopic, Value: value}, nil)
			}
		}()
		group := fmt.Sprintf("rebalance-%d", time.Now().UnixNano())
		a, ad := member(group, rtopic, nil)
		bb, bd := member(group, rtopic, nil)
		for total.Load() < 1000 {
			time.Sleep(time.Millisecond)
		}
		var first atomic.Int64
		start := time.Now()
		cc, cd := member(group, rtopic, &first)
		for first.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		rebalance := time.Unix(0, first.Load()).Sub(start)
		close(stop)
		<-prodDone
		for _, m := range []struct {
			cl   *kgo.Client
			done chan struct{}
		}{{a, ad}, {bb, bd}, {cc, cd}} {
			m.cl.Close()
			<-m.done
		}

		// Throughput: 3 members from a standing start.
		total.Store(0)
		group = fmt.Sprintf("throughput-%d", time.Now().UnixNano())
		start = time.Now()
		var ms []*kgo.Client
		var dones []chan struct{}
		for range 3 {
			cl, d := member(group, topic, nil)
			ms, dones = append(ms, cl), append(dones, d)
		}
		for total.Load() < n {
			time.Sleep(time.Millisecond)
		}
		elapsed := time.Since(start)
		for i, cl := range ms {
			cl.Close()
			<-dones[i]
		}
		b.ReportMetric(float64(rebalance.Milliseconds()), "rebalance-ms")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
	}
}
