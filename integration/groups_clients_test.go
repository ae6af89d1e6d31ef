package integration

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
)

// groupClientSetup starts 3 brokers with a topic of 3 partitions holding
// n records and returns the cluster and the produced values.
func groupClientSetup(t *testing.T, topic string, n int) (*Cluster, map[string]bool) {
	t.Helper()
	c := StartCluster(t, groupOptions(3))
	createTopic(t, c, topic, 3, 3)
	acked := produceN(t, newProducer(t, c), topic, n)
	want := map[string]bool{}
	for _, vs := range acked {
		for _, v := range vs {
			want[v] = true
		}
	}
	return c, want
}

// checkCommittedAtEnd checks that group committed the end offset of every
// partition (waiting a little: some clients commit in the background).
func checkCommittedAtEnd(t *testing.T, c *Cluster, group, topic string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends := endOffsets(t, adm, topic)
	for {
		got := committed(t, c, group, topic, 3)
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if got[o.Partition] != o.Offset {
				ok = false
			}
		})
		if ok {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("group %s committed %v; end offsets %v", group, got, ends)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endOffsets lists a topic's end offsets, retrying while a partition has
// no leader (leadership moves back to a restarted broker, or to the
// preferred replica).
func endOffsets(t *testing.T, adm *kadm.Client, topic string) kadm.ListedOffsets {
	t.Helper()
	return listOffsets(t, "end", topic, adm.ListEndOffsets)
}

// startOffsets is endOffsets for the log start offsets.
func startOffsets(t *testing.T, adm *kadm.Client, topic string) kadm.ListedOffsets {
	t.Helper()
	return listOffsets(t, "start", topic, adm.ListStartOffsets)
}

// listOffsets retries list until every partition answers without error
// (LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER: retriable, as clients
// treat them).
func listOffsets(t *testing.T, which, topic string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) kadm.ListedOffsets {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		offs, err := list(ctx, topic)
		if err == nil && offs.Error() == nil {
			return offs
		}
		if ctx.Err() != nil {
			t.Fatalf("list %s offsets of %s: %v %v", which, topic, err, offs.Error())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type saramaHandler struct {
	mu     sync.Mutex
	seen   map[string]bool
	want   int
	cancel context.CancelFunc
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.mu.Lock()
		h.seen[string(msg.Value)] = true
		done := len(h.seen) >= h.want
		h.mu.Unlock()
		s.MarkMessage(msg, "")
		if done {
			s.Commit()
			h.cancel()
		}
	}
	return nil
}

// TestGroupSarama consumes with sarama's ConsumerGroup (two members) and
// checks the commits.
func TestGroupSarama(t *testing.T) {
	const topic, group, n = "sarama-group-topic", "sarama-group", 300
	c, want := groupClientSetup(t, topic, n)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := &saramaHandler{seen: map[string]bool{}, want: n, cancel: cancel}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		cg, err := sarama.NewConsumerGroup(c.Addrs(), group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cg.Close()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					t.Logf("sarama consume: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	h.mu.Lock()
	for v := range want {
		if !h.seen[v] {
			t.Fatalf("sarama group did not consume %s (%d of %d)", v, len(h.seen), n)
		}
	}
	h.mu.Unlock()
	checkCommittedAtEnd(t, c, group, topic)
}

// TestGroupKafkaGo consumes with segmentio/kafka-go's group Reader.
func TestGroupKafkaGo(t *testing.T) {
	const topic, group, n = "kafkago-topic", "kafkago-group", 300
	c, want := groupClientSetup(t, topic, n)
	r := segkafka.NewReader(segkafka.ReaderConfig{
		Brokers: c.Addrs(), GroupID: group, Topic: topic,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
		StartOffset: segkafka.FirstOffset, HeartbeatInterval: time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < n {
		m, err := r.ReadMessage(ctx) // commits synchronously (CommitInterval 0)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("kafka-go read after %d records: %v", len(seen), err)
			}
			// kafka-go surfaces retriable fetch errors (a leadership moved
			// by the balancer) and carries on with the next read.
			t.Logf("kafka-go read: %v", err)
			continue
		}
		seen[string(m.Value)] = true
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for v := range want {
		if !seen[v] {
			t.Fatalf("kafka-go did not consume %s", v)
		}
	}
	checkCommittedAtEnd(t, c, group, topic)
}

// TestGroupKcat consumes with kcat's balanced consumer (librdkafka's
// subscribe, -G), which commits on exit.
func TestGroupKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (.ci/run installs it)")
	}
	const topic, group, n = "kcat-group-topic", "kcat-group", 300
	c, want := groupClientSetup(t, topic, n)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", "-b", strings.Join(c.Addrs(), ","), "-G", group, "-e", "-q",
		"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=100", "-f", "%s\n", topic)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat -G: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		seen[l] = true
	}
	for v := range want {
		if !seen[v] {
			t.Fatalf("kcat -G did not consume %s (%d lines)", v, len(seen))
		}
	}
	checkCommittedAtEnd(t, c, group, topic)
}
