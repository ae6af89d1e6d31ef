package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
)

// TestTopicConfigsAndDeleteRecords: kadm alters and describes topic configs
// (on a broker that may not be the controller) and deletes records; the log
// start moves on every replica.
func TestTopicConfigsAndDeleteRecords(t *testing.T) {
	forEachBackend(t, testTopicConfigsAndDeleteRecords)
}

func testTopicConfigsAndDeleteRecords(t *testing.T, consensus component.Type) {
	c := StartCluster(t, Options{Brokers: 3, Consensus: consensus})
	const topic = "admin-topic"
	createTopic(t, c, topic, 1, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))

	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, topic)
	if err != nil || alter[0].Err != nil {
		t.Fatalf("incremental alter: %v %+v", err, alter)
	}
	legacy, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("65536")}}, topic)
	if err != nil || legacy[0].Err != nil {
		t.Fatalf("legacy alter: %v %+v", err, legacy)
	}
	bad, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}}, topic)
	if err == nil && bad[0].Err == nil {
		t.Fatalf("cleanup.policy=compact accepted; compaction is not supported")
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]kadm.Config{}
	for _, cfg := range rc.Configs {
		got[cfg.Key] = cfg
	}
	// The legacy AlterConfigs replaced the whole set: retention.ms is back to its default.
	if v := got["max.message.bytes"]; v.MaybeValue() != "65536" || v.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
		t.Errorf("max.message.bytes = %q from %v", v.MaybeValue(), v.Source)
	}
	if v := got["retention.ms"]; v.MaybeValue() != "604800000" || v.Source.String() != "DEFAULT_CONFIG" {
		t.Errorf("retention.ms = %q from %v, want the default after a legacy AlterConfigs", v.MaybeValue(), v.Source)
	}

	prod := newClient(t, c, kgo.DefaultProduceTopic(topic))
	for i := 0; i < 50; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	del, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := del.Lookup(topic, 0); d.Err != nil || d.LowWatermark != 30 {
		t.Fatalf("delete records: %+v", d)
	}
	waitStart(t, c, topic, 0, 30, 50)
	starts := startOffsets(t, adm, topic)
	if s, _ := starts.Lookup(topic, 0); s.Offset != 30 {
		t.Fatalf("earliest offset %d after deleting below 30", s.Offset)
	}
	// A consumer from the start now begins at 30.
	cons := newClient(t, c, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	fs := cons.PollFetches(ctx)
	if recs := fs.Records(); len(recs) == 0 || recs[0].Offset != 30 {
		t.Fatalf("first consumed record: %v", recs)
	}
}

// waitStart waits until every live replica of a partition starts at start
// and ends at next, holds exactly those records, and has dropped the log
// prefix from its store.
func waitStart(t testing.TB, c *Cluster, topic string, p int32, start, next int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		detail := ""
		for i := 0; i < c.Size() && detail == ""; i++ {
			n := c.Node(i)
			if n == nil {
				continue
			}
			recs, st, err := n.Broker.ReplicaRecords(topic, p)
			switch {
			case err != nil:
				detail = err.Error()
			case st.StartOffset != start || st.NextOffset != next:
				detail = fmt.Sprintf("broker %d: start %d next %d", i+1, st.StartOffset, st.NextOffset)
			case st.FirstIndex <= 1:
				detail = fmt.Sprintf("broker %d: log prefix not dropped (first index %d)", i+1, st.FirstIndex)
			default:
				if vals := valuesFrom(t, recs, start); int64(len(vals)) != next-start {
					detail = fmt.Sprintf("broker %d: %d records from %d, want %d", i+1, len(vals), start, next-start)
				}
			}
		}
		if detail == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas of %s-%d: %s", topic, p, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// valuesFrom decodes the records at and after offset start.
func valuesFrom(t testing.TB, batches []byte, start int64) []string {
	t.Helper()
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.RecordBatches = batches
	rp.HighWatermark = 1 << 62
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "t", Partition: 0, Offset: start},
		&rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("decode replica log: %v", fp.Err)
	}
	out := make([]string, 0, len(fp.Records))
	for _, r := range fp.Records {
		out = append(out, string(r.Value))
	}
	return out
}

// TestRetention: records past retention.ms disappear from every replica
// and ListOffsets earliest moves forward; newer records stay.
func TestRetention(t *testing.T) { forEachBackend(t, testRetention) }

func testRetention(t *testing.T, consensus component.Type) {
	c := StartCluster(t, Options{Brokers: 3, Consensus: consensus, Configure: func(cfg *config.Config) {
		cfg.Broker.RetentionCheckInterval = 100 * time.Millisecond
	}})
	const topic = "retained"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"retention.ms": kadm.StringPtr("600000")}, topic); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, c, kgo.DefaultProduceTopic(topic))
	old := time.Now().Add(-time.Hour)
	for i := 0; i < 20; i++ { // an hour old: past the 10 minutes of retention
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("old"), Timestamp: old}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("new")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitStart(t, c, topic, 0, 20, 25)
	starts := startOffsets(t, adm, topic)
	if s, _ := starts.Lookup(topic, 0); s.Offset != 20 {
		t.Fatalf("earliest offset %d, want 20", s.Offset)
	}
}
