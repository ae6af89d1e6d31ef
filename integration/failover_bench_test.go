package integration

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkFailover measures, per consensus backend, the time from killing
// the leader of a partition (3 brokers, RF=3) to the first acknowledged
// produce to that partition. The client refreshes metadata as soon as it is
// told to (MetadataMinAge 50ms), so the figure is the cluster's, not the
// client's backoff. Run: go test -run XXX -bench BenchmarkFailover -benchtime 5x .
func BenchmarkFailover(b *testing.B) {
	for _, be := range backends {
		b.Run(string(be), func(b *testing.B) {
			var ds []time.Duration
			for i := 0; i < b.N; i++ {
				c := StartCluster(b, Options{Brokers: 3, Consensus: be})
				createTopic(b, c, "failover", 1, 3)
				cl := newClient(b, c, kgo.DefaultProduceTopic("failover"), kgo.MetadataMinAge(50*time.Millisecond),
					kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				victim := leaderOf(b, c, "failover", 0)
				start := time.Now()
				c.Kill(int(victim - 1))
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
				cancel()
				c.Close()
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), "median-failover-ms")
			b.ReportMetric(float64(ds[len(ds)-1].Milliseconds()), "max-failover-ms")
		})
	}
}
