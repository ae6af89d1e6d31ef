package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestKcat produces and consumes with librdkafka's kcat (installed by
// .ci/run), against 3 brokers.
func TestKcat(t *testing.T) { forEachPairing(t, testKcat) }

func testKcat(t *testing.T, opts Options) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (.ci/run installs it)")
	}
	opts.Brokers = 3
	c := StartCluster(t, opts)
	checkPlugins(t, c)
	const topic = "kcat-topic"
	createTopic(t, c, topic, 3, 3)
	bootstrap := strings.Join(c.Addrs(), ",")
	var in bytes.Buffer
	const n = 500
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "line-%04d\n", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod := exec.CommandContext(ctx, "kcat", "-b", bootstrap, "-t", topic, "-P", "-X", "acks=all",
		"-X", "enable.idempotence=true", "-z", "lz4")
	prod.Stdin = &in
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	cons := exec.CommandContext(ctx, "kcat", "-b", bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-q", "-f", "%p %o %s\n")
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != n {
		t.Fatalf("kcat consumed %d records, want %d:\n%s", len(lines), n, out)
	}
	seen := map[string]bool{}
	next := map[string]int{}
	for _, l := range lines {
		var p, off string
		var v string
		if _, err := fmt.Sscan(l, &p, &off, &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if off != fmt.Sprint(next[p]) {
			t.Fatalf("partition %s: offset %s, want %d", p, off, next[p])
		}
		next[p]++
		if seen[v] {
			t.Fatalf("%s consumed twice", v)
		}
		seen[v] = true
	}
	// Metadata as librdkafka sees it.
	md, err := exec.CommandContext(ctx, "kcat", "-b", bootstrap, "-L", "-t", topic).CombinedOutput()
	if err != nil || !strings.Contains(string(md), "3 brokers") || !strings.Contains(string(md), "3 partitions") {
		t.Fatalf("kcat -L: %v\n%s", err, md)
	}
}

// TestSarama produces with sarama's sync producer (acks=all) and consumes
// with its partition consumer; then checks ListOffsets and Metadata agree.
func TestSarama(t *testing.T) { forEachPairing(t, testSarama) }

func testSarama(t *testing.T, opts Options) {
	opts.Brokers = 3
	c := StartCluster(t, opts)
	checkPlugins(t, c)
	const topic = "sarama-topic"
	createTopic(t, c, topic, 2, 3)
	for p := int32(0); p < 2; p++ {
		leaderOf(t, c, topic, p) // sarama gives up after its retries; start once leaders are elected
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 20
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	prod, err := sarama.NewSyncProducer(c.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 200
	want := map[int32][]string{}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("s-%04d", i)
		p, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: int32(i % 2), Value: sarama.StringEncoder(v)})
		if err != nil {
			t.Fatalf("send %s: %v", v, err)
		}
		if off != int64(len(want[p])) {
			t.Fatalf("partition %d: offset %d, want %d", p, off, len(want[p]))
		}
		want[p] = append(want[p], v)
	}
	ccfg := sarama.NewConfig()
	ccfg.Version = sarama.V2_8_0_0
	consumer, err := sarama.NewConsumer(c.Addrs(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for p, vals := range want {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			select {
			case m := <-pc.Messages():
				if m.Offset != int64(i) || string(m.Value) != v {
					t.Fatalf("partition %d: got %q at %d, want %q at %d", p, m.Value, m.Offset, v, i)
				}
			case err := <-pc.Errors():
				t.Fatalf("partition %d: %v", p, err)
			case <-time.After(30 * time.Second):
				t.Fatalf("partition %d: timed out after %d records", p, i)
			}
		}
		pc.Close()
	}

	// ListOffsets (via kadm) and Metadata agree with what was written.
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends := endOffsets(t, adm, topic) // retries LEADER_NOT_AVAILABLE, as clients do
	starts := startOffsets(t, adm, topic)
	for p, vals := range want {
		e, _ := ends.Lookup(topic, p)
		s, _ := starts.Lookup(topic, p)
		if e.Err != nil || e.Offset != int64(len(vals)) || s.Err != nil || s.Offset != 0 {
			t.Errorf("partition %d: start %d (%v) end %d (%v), want 0 and %d", p, s.Offset, s.Err, e.Offset, e.Err, len(vals))
		}
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	td := md.Topics[topic]
	if td.Err != nil || len(td.Partitions) != 2 || len(md.Brokers) != 3 {
		t.Fatalf("metadata: %+v, brokers %v", td, md.Brokers)
	}
	for _, pd := range td.Partitions {
		if len(pd.Replicas) != 3 || pd.Leader < 1 || pd.Leader > 3 {
			t.Errorf("partition %d: replicas %v leader %d", pd.Partition, pd.Replicas, pd.Leader)
		}
	}
}
