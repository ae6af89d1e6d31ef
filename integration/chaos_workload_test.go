package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/integration/chaos"
)

// TestChaosWorkload runs the chaos workload against three in-process
// brokers, kills the leader of partition 0 and restarts it, and checks the
// history: no anomaly, and acknowledged sends on every partition.
func TestChaosWorkload(t *testing.T) { forEachBackend(t, testChaosWorkload) }

func testChaosWorkload(t *testing.T, consensus component.Type) {
	run, down := 3*time.Second, 2*time.Second
	if testing.Short() {
		run, down = time.Second, time.Second
	}
	c := StartCluster(t, Options{Brokers: 3, Consensus: consensus})
	const topic = "chaos-workload"
	const partitions = 3
	createTopic(t, c, topic, partitions, 3)
	for p := int32(0); p < partitions; p++ {
		leaderOf(t, c, topic, p)
	}
	ctx := context.Background()
	w, err := chaos.StartWorkload(ctx, chaos.WorkloadOptions{
		Addrs: c.Addrs(), Topic: topic, Partitions: partitions,
		Producers: 3, SendTimeout: 10 * time.Second, BigEvery: 100,
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop) // if the test fails before Stop

	// waitProgress waits until n more sends were acknowledged.
	waitProgress := func(n int64) {
		t.Helper()
		want := w.Stats().OK + n
		deadline := time.Now().Add(30 * time.Second)
		for w.Stats().OK < want {
			if time.Now().After(deadline) {
				t.Fatalf("no progress: %+v, want %d ok", w.Stats(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitProgress(100)
	time.Sleep(run) // a fault-free stretch

	victim := leaderOf(t, c, topic, 0)
	fault := chaos.Fault{Kind: "kill", Detail: fmt.Sprintf("broker %d", victim), Brokers: []int32{victim}, Start: time.Now(), Led: []int32{0}}
	t.Logf("killing broker %d, leader of %s-0, with %+v", victim, topic, w.Stats())
	c.Kill(int(victim - 1))
	time.Sleep(down)
	c.Restart(int(victim - 1))
	fault.End = time.Now()
	t.Logf("restarted broker %d, with %+v", victim, w.Stats())
	waitProgress(100)
	time.Sleep(run)
	w.Stop()

	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	h := &chaos.History{Faults: []chaos.Fault{fault}}
	h.Drain, err = w.Drain(dctx)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	w.Fill(h)
	r := chaos.Check(h)
	st := chaos.ComputeStats(h)
	t.Logf("report:\n%s", r)
	t.Logf("stats: %d sends, %d observations, %d hwms, %d commits; %.0f acks/s, p50 %v, p99 %v, failover %v",
		len(h.Sends), len(h.Observations), len(h.HWMs), len(h.Commits), st.Throughput, st.P50, st.P99, st.FailoverTimes)
	if !r.OK() {
		t.Errorf("%d anomalies: %v", len(r.Anomalies), r.ByKind)
	}
	if r.Sends.Failed == 0 {
		t.Errorf("no failed send: the big values were not refused")
	}
	for _, p := range r.Partitions {
		if p.Acked == 0 {
			t.Errorf("partition %d: no acknowledged send", p.Partition)
		}
	}
	if len(r.Partitions) != partitions {
		t.Errorf("%d partitions reported, want %d", len(r.Partitions), partitions)
	}
	if len(h.HWMs) == 0 || len(h.Commits) == 0 {
		t.Errorf("%d hwms, %d commits recorded", len(h.HWMs), len(h.Commits))
	}
}
