package consensustest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/consensus"
)

// RunBenchmarks measures proposal throughput and commit latency on three
// nodes connected directly (no proxies), for 1 and 64 concurrent proposers
// over 1 and 100 groups. Each proposal is 128 bytes, proposed on its
// group's leader; the latency is that of the Propose call (commit and apply
// on the leader).
func RunBenchmarks(b *testing.B, be Backend, stores StoreMaker) {
	s := &suite{be: be, stores: stores}
	for _, groups := range []int{1, 100} {
		for _, proposers := range []int{1, 64} {
			b.Run(fmt.Sprintf("groups=%d/proposers=%d", groups, proposers), func(b *testing.B) {
				benchPropose(b, s, groups, proposers)
			})
		}
	}
}

func benchPropose(b *testing.B, s *suite, groups, proposers int) {
	c := newCluster(b, s, 3, clusterOpts{direct: true})
	all := c.ids()
	leaders := make([]atomic.Uint64, groups) // group index -> leader
	for i := range groups {
		c.startGroupAll(groupID(i + 1))
	}
	for i := range groups {
		l, _ := c.waitLeader(groupID(i+1), all, c.opTimeout())
		leaders[i].Store(uint64(l))
	}
	payload := make([]byte, 128)

	var next atomic.Int64
	lat := make([][]time.Duration, proposers)
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range proposers {
		wg.Go(func() {
			for {
				n := next.Add(1) - 1
				if n >= int64(b.N) {
					return
				}
				gi := int(n) % groups
				g := groupID(gi + 1)
				t0 := time.Now()
				for {
					grp := c.group(nodeID(leaders[gi].Load()), g)
					ctx, cancel := context.WithTimeout(context.Background(), c.opTimeout())
					_, err := grp.Propose(ctx, payload)
					cancel()
					if err == nil {
						break
					}
					// A leader change under load: follow the hint, or
					// look for the new leader. (A retried proposal whose
					// outcome was unknown may commit twice; the benchmark
					// does not check contents.)
					code := consensus.CodeOf(err)
					if code != consensus.CodeNotLeader && code != consensus.CodeDropped && code != consensus.CodeTimeout {
						failed.Store(fmt.Errorf("group %d: Propose: %w", g, err))
						return
					}
					if time.Since(t0) > c.opTimeout() {
						failed.Store(fmt.Errorf("group %d: no leader took the proposal within %v: %w", g, c.opTimeout(), err))
						return
					}
					if h := consensus.LeaderHint(err); h != 0 {
						leaders[gi].Store(uint64(h))
						continue
					}
					time.Sleep(c.pollEvery())
					if l := c.anyLeader(g); l != 0 {
						leaders[gi].Store(uint64(l))
					}
				}
				lat[p] = append(lat[p], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	all2 := slices.Concat(lat...)
	slices.Sort(all2)
	b.ReportMetric(float64(len(all2))/elapsed.Seconds(), "props/s")
	b.ReportMetric(ms(percentile(all2, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all2, 0.99)), "p99-ms")
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
