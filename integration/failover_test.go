package integration

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaderOf asks the cluster (over Metadata) who leads a partition.
func leaderOf(t testing.TB, c *Cluster, topic string, p int32) int32 {
	t.Helper()
	// A short metadata min age: kadm's Metadata is served from the client's
	// cache, which would otherwise hold a leaderless answer for seconds.
	adm := kadm.NewClient(newClient(t, c, kgo.MetadataMinAge(20*time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if pd, ok := md.Topics[topic].Partitions[p]; ok && pd.Leader >= 0 && pd.Err == nil {
				return pd.Leader
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no leader for %s-%d", topic, p)
	return -1
}

// waitReplicasEqual waits until every live replica of every partition holds
// the same records, then checks them against the acknowledged values.
func waitReplicasEqual(t testing.TB, c *Cluster, topic string, partitions int32, acked map[int32][]string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for p := int32(0); p < partitions; p++ {
		for {
			var ref []byte
			var refNode int
			same, n := true, 0
			var detail string
			for i := 0; i < c.Size(); i++ {
				nd := c.Node(i)
				if nd == nil {
					continue
				}
				recs, st, err := nd.Broker.ReplicaRecords(topic, p)
				if err != nil {
					same, detail = false, err.Error()
					break
				}
				if n == 0 {
					ref, refNode = recs, i
				} else if !bytes.Equal(ref, recs) {
					same = false
					detail = fmt.Sprintf("broker %d has %d bytes, broker %d has %d (next offset %d)", refNode+1, len(ref), i+1, len(recs), st.NextOffset)
				}
				n++
			}
			if same && n > 0 {
				vals := recordValues(t, ref)
				checkAcked(t, p, vals, acked[p])
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("partition %d: replicas differ: %s", p, detail)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// checkAcked checks that every acknowledged value is at its acknowledged
// offset and nothing is duplicated.
func checkAcked(t testing.TB, p int32, log []string, acked []string) {
	t.Helper()
	seen := map[string]int{}
	for off, v := range log {
		if prev, dup := seen[v]; dup {
			t.Errorf("partition %d: value %s at offsets %d and %d", p, v, prev, off)
		}
		seen[v] = off
	}
	for off, v := range acked {
		if v == "" {
			continue
		}
		if off >= len(log) || log[off] != v {
			got := "nothing"
			if off < len(log) {
				got = log[off]
			}
			t.Errorf("partition %d: acknowledged %s at offset %d, the log has %s", p, v, off, got)
		}
	}
}

// recordValues decodes the values of whole uncompressed-or-not batches
// with kgo's own decoder.
func recordValues(t testing.TB, batches []byte) []string {
	t.Helper()
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.RecordBatches = batches
	rp.HighWatermark = 1 << 62
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "t", Partition: 0, KeepControlRecords: true},
		&rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("decode replica log: %v", fp.Err)
	}
	out := make([]string, 0, len(fp.Records))
	for i, r := range fp.Records {
		if r.Offset != int64(i) {
			t.Fatalf("replica log: record %d has offset %d", i, r.Offset)
		}
		out = append(out, string(r.Value))
	}
	return out
}

func TestLeaderKillThreeBrokers(t *testing.T) {
	forEachBackendAndStore(t, testLeaderKillThreeBrokers)
}

func testLeaderKillThreeBrokers(t *testing.T, opts Options) {
	opts.Brokers = 3
	c := StartCluster(t, opts)
	checkPlugins(t, c)
	const topic = "payments"
	const partitions = 6
	createTopic(t, c, topic, partitions, 3)
	cl := newClient(t, c, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordDeliveryTimeout(60*time.Second))

	var mu sync.Mutex
	acked := map[int32][]string{}
	record := func(r *kgo.Record) {
		mu.Lock()
		defer mu.Unlock()
		for int64(len(acked[r.Partition])) <= r.Offset {
			acked[r.Partition] = append(acked[r.Partition], "")
		}
		if acked[r.Partition][r.Offset] != "" {
			t.Errorf("partition %d offset %d acknowledged twice", r.Partition, r.Offset)
		}
		acked[r.Partition][r.Offset] = string(r.Value)
	}
	const n = 20_000
	victim := leaderOf(t, c, topic, 0)
	var wg sync.WaitGroup
	var failures int
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if i == n/2 {
			t.Logf("killing broker %d, leader of %s-0", victim, topic)
			c.Kill(int(victim - 1))
		}
		wg.Add(1)
		v := fmt.Sprintf("v-%07d", i)
		cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				failures++
				mu.Unlock()
				return
			}
			record(r)
		})
		if i%1000 == 0 {
			time.Sleep(20 * time.Millisecond) // spread the load across the kill
		}
	}
	wg.Wait()
	if failures > 0 {
		t.Errorf("%d of %d produces failed after retries", failures, n)
	}
	if l := leaderOf(t, c, topic, 0); l == victim {
		t.Fatalf("broker %d still leads after being killed", victim)
	}
	c.Restart(int(victim - 1))
	checkPlugins(t, c) // the restarted broker's plugins too
	waitReplicasEqual(t, c, topic, partitions, acked)
	total := 0
	for _, v := range acked {
		total += len(v)
	}
	t.Logf("%d records acknowledged; replica logs identical on 3 brokers", total)
}
