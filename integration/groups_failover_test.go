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

// groupWatch records what a group's members processed and watches the
// group's committed offsets, which must never move backwards.
type groupWatch struct {
	t     testing.TB
	mu    sync.Mutex
	seen  map[string]int
	high  map[int32]int64 // highest committed offset seen per partition
	total atomic.Int64
	back  []string
}

func (w *groupWatch) saw(v string) {
	w.mu.Lock()
	w.seen[v]++
	w.mu.Unlock()
	w.total.Add(1)
}

// watchCommits polls the committed offsets until ctx ends.
func (w *groupWatch) watchCommits(ctx context.Context, adm *kadm.Client, group, topic string) {
	for ctx.Err() == nil {
		resps, err := adm.FetchOffsets(ctx, group)
		if err == nil && resps.Error() == nil {
			w.mu.Lock()
			resps.Each(func(r kadm.OffsetResponse) {
				if r.Topic != topic {
					return
				}
				if prev, ok := w.high[r.Partition]; ok && r.At < prev {
					w.back = append(w.back, fmt.Sprintf("partition %d: committed %d after %d", r.Partition, r.At, prev))
				}
				w.high[r.Partition] = max(w.high[r.Partition], r.At)
			})
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitTotal waits until the members processed at least n records.
func (w *groupWatch) waitTotal(n int64, what string) {
	w.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for w.total.Load() < n {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: processed %d records, want %d", what, w.total.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMember is one kgo group consumer processing into a groupWatch.
type groupMember struct {
	cl      *kgo.Client
	done    chan struct{}
	started time.Time
	first   atomic.Int64 // unix nanos of its first record, 0 before
}

func startMember(t testing.TB, c *Cluster, w *groupWatch, group, topic string, opts ...kgo.Opt) *groupMember {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.Addrs()...),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(200 * time.Millisecond),
		kgo.HeartbeatInterval(time.Second),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m := &groupMember{cl: cl, done: make(chan struct{}), started: time.Now()}
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				m.first.CompareAndSwap(0, time.Now().UnixNano())
				w.saw(string(r.Value))
			})
		}
	}()
	t.Cleanup(m.close)
	return m
}

// close leaves the group (kgo commits what was polled first).
func (m *groupMember) close() {
	m.cl.Close()
	<-m.done
}

// TestGroupFailoverFranz: three franz-go members (cooperative-sticky) on a
// 3-broker cluster and 12 partitions, members joining and leaving
// mid-stream, the coordinator's broker killed and restarted: every
// acknowledged record is processed at least once, committed offsets never
// move backwards, and a consumer started afterwards resumes from the
// commits.
func TestGroupFailoverFranz(t *testing.T) { forEachPairing(t, testGroupFailoverFranz) }

func testGroupFailoverFranz(t *testing.T, opts Options) {
	o := groupOptions(3)
	o.Consensus, o.ConsensusPlugin, o.StoragePlugin = opts.Consensus, opts.ConsensusPlugin, opts.StoragePlugin
	c := StartCluster(t, o)
	checkPlugins(t, c)
	const topic, group, partitions = "gf-topic", "gf-group", 12
	createTopic(t, c, topic, partitions, 3)
	w := &groupWatch{t: t, seen: map[string]int{}, high: map[int32]int64{}}
	adm := kadm.NewClient(newClient(t, c))
	wctx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); w.watchCommits(wctx, adm, group, topic) }()
	defer func() { stopWatch(); <-watchDone }()

	// The producer runs through every phase.
	prod := newClient(t, c, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordDeliveryTimeout(60*time.Second))
	var ackedMu sync.Mutex
	var acked []string
	var produced atomic.Int64
	stopProd := make(chan struct{})
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		for i := 0; ; i++ {
			select {
			case <-stopProd:
				return
			default:
			}
			var recs []*kgo.Record
			for j := 0; j < 50; j++ {
				recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("v-%04d-%02d", i, j))})
			}
			res := prod.ProduceSync(context.Background(), recs...)
			ackedMu.Lock()
			for _, r := range res {
				if r.Err == nil {
					acked = append(acked, string(r.Record.Value))
				}
			}
			ackedMu.Unlock()
			produced.Add(int64(len(recs)))
			time.Sleep(10 * time.Millisecond)
		}
	}()

	a := startMember(t, c, w, group, topic)
	b := startMember(t, c, w, group, topic)
	w.waitTotal(500, "two members")

	cm := startMember(t, c, w, group, topic)
	for cm.first.Load() == 0 {
		w.waitTotal(w.total.Load()+1, "third member")
	}
	t.Logf("rebalance: third member's first record %v after it started", time.Unix(0, cm.first.Load()).Sub(cm.started))

	coord := groupCoordinator(t, adm, group)
	t.Logf("killing broker %d, the coordinator of %s", coord, group)
	c.Kill(int(coord - 1))
	w.waitTotal(w.total.Load()+500, "after the coordinator was killed")
	for dl := time.Now().Add(30 * time.Second); groupCoordinator(t, adm, group) == coord; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(dl) {
			t.Fatalf("broker %d still coordinates after being killed", coord)
		}
	}
	c.Restart(int(coord - 1))
	w.waitTotal(w.total.Load()+500, "after the coordinator restarted")

	a.close()
	w.waitTotal(w.total.Load()+500, "after a member left")
	d := startMember(t, c, w, group, topic)
	w.waitTotal(w.total.Load()+500, "after a member joined")

	close(stopProd)
	<-prodDone
	ackedMu.Lock()
	all := append([]string(nil), acked...)
	ackedMu.Unlock()
	deadline := time.Now().Add(45 * time.Second)
	for {
		missing := 0
		w.mu.Lock()
		for _, v := range all {
			if w.seen[v] == 0 {
				missing++
			}
		}
		w.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged records were never processed", missing, len(all))
		}
		time.Sleep(50 * time.Millisecond)
	}
	dups := int64(0)
	w.mu.Lock()
	for _, n := range w.seen {
		dups += int64(n - 1)
	}
	w.mu.Unlock()
	t.Logf("%d records acknowledged, %d processed (%d redelivered)", len(all), w.total.Load(), dups)

	b.close()
	cm.close()
	d.close()
	stopWatch()
	<-watchDone
	if len(w.back) > 0 {
		t.Fatalf("committed offsets moved backwards: %v", w.back)
	}

	// Everything processed was committed; a new member resumes there.
	start := committed(t, c, group, topic, partitions)
	ends := endOffsets(t, adm, topic)
	ends.Each(func(o kadm.ListedOffset) {
		if start[o.Partition] != o.Offset {
			t.Errorf("partition %d: committed %d, end offset %d", o.Partition, start[o.Partition], o.Offset)
		}
	})
	var tail []*kgo.Record
	for i := 0; i < 2*partitions; i++ {
		tail = append(tail, &kgo.Record{Value: []byte(fmt.Sprintf("tail-%02d", i))})
	}
	if err := prod.ProduceSync(context.Background(), tail...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.FetchMaxWait(200*time.Millisecond), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	for got := 0; got < len(tail); {
		fs := e.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the restarted consumer got %d of %d new records", got, len(tail))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < start[r.Partition] {
				t.Fatalf("the restarted consumer reprocessed %s-%d offset %d, below its commit %d", r.Topic, r.Partition, r.Offset, start[r.Partition])
			}
			got++
		})
	}
}

// groupCoordinator asks the cluster which broker coordinates group.
func groupCoordinator(t testing.TB, adm *kadm.Client, group string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		r := adm.FindGroupCoordinators(ctx, group)
		if fc, ok := r[group]; ok && fc.Err == nil {
			return fc.NodeID
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no coordinator for %s", group)
	return -1
}
