package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/config"
)

// groupOptions are cluster options for consumer group tests: a few
// __consumer_offsets partitions (Kafka's 50 Raft groups per broker would
// only slow a test down) and no initial rebalance delay. Callers may set
// other fields (Consensus) on the result.
func groupOptions(brokers int) Options {
	return Options{Brokers: brokers, Configure: func(cfg *config.Config) {
		cfg.Broker.OffsetsTopicPartitions = 6
		cfg.Broker.GroupInitialRebalanceDelay = 0
	}}
}

// committed fetches a group's committed offsets with kadm (-1 where none).
func committed(t testing.TB, c *Cluster, group, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resps, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			err = resps.Error()
		}
		if err == nil {
			out := map[int32]int64{}
			for p := int32(0); p < partitions; p++ {
				out[p] = -1
				if r, ok := resps.Lookup(topic, p); ok {
					out[p] = r.At
				}
			}
			return out
		}
		if ctx.Err() != nil {
			t.Fatalf("fetch offsets of %s: %v", group, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consumeGroup consumes with a kgo group member until it has seen n
// records, committing synchronously, then leaves the group.
func consumeGroup(t testing.TB, c *Cluster, group, topic string, n int, opts ...kgo.Opt) map[string]int {
	t.Helper()
	cl := newClient(t, c, append([]kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	seen := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	total := 0
	for total < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s consumed %d of %d records", group, total, n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			total++
		})
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Logf("commit: %v", err)
		}
	}
	cl.Close() // leaves the group
	return seen
}

// TestGroupAdmin drives the group admin calls with kadm against a real
// coordinator: ListGroups, DescribeGroups, FetchOffsets, Lag, OffsetDelete
// and DeleteGroups, with their refusals while the group has members; and
// decodes the records of __consumer_offsets with kmsg, to check that the
// broker writes Kafka's own schemas.
func TestGroupAdmin(t *testing.T) {
	c := StartCluster(t, groupOptions(3))
	const topic, group = "admin-topic", "admin-group"
	createTopic(t, c, topic, 4, 3)
	acked := produceN(t, newProducer(t, c), topic, 200)
	seen := consumeGroup(t, c, group, topic, 200)
	if len(seen) != 200 {
		t.Fatalf("consumed %d distinct values, want 200", len(seen))
	}
	offs := committed(t, c, group, topic, 4)
	for p := int32(0); p < 4; p++ {
		if offs[p] != int64(len(acked[p])) {
			t.Errorf("partition %d: committed %d, want %d", p, offs[p], len(acked[p]))
		}
	}

	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	listed, err := adm.ListGroups(ctx)
	if err != nil || !slicesContains(listed.Groups(), group) {
		t.Fatalf("ListGroups: %v %v", listed.Groups(), err)
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil || described[group].State != "Empty" || described[group].ProtocolType != "consumer" {
		t.Fatalf("DescribeGroups: %+v %v", described[group], err)
	}
	lag, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatalf("Lag: %v", err)
	}
	if l := lag[group]; l.Error() != nil || l.Lag.Total() != 0 {
		t.Fatalf("Lag after consuming everything: %v, total %d", l.Error(), l.Lag.Total())
	}
	var more []*kgo.Record
	for i := 0; i < 40; i++ {
		more = append(more, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("more-%d", i))})
	}
	if err := newProducer(t, c).ProduceSync(ctx, more...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lag, err = adm.Lag(ctx, group)
	if err != nil || lag[group].Lag.Total() != 40 {
		t.Fatalf("Lag after 40 more records: %d %v", lag[group].Lag.Total(), err)
	}

	// An unknown group has no committed offsets and no error.
	unknown, err := adm.FetchOffsets(ctx, "no-such-group")
	if err != nil || unknown.Error() != nil {
		t.Fatalf("FetchOffsets of an unknown group: %v %v", err, unknown.Error())
	}

	// With a member: the topic's offsets cannot be deleted, nor the group.
	member := newClient(t, c, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	waitGroupState(t, adm, group, "Stable")
	// The coordinator may move (the leader balancer runs every second
	// here): NOT_COORDINATOR is retriable, as a client retries it.
	var ds kadm.DeleteOffsetsResponses
	for deadline := time.Now().Add(10 * time.Second); ; {
		ds, err = adm.DeleteOffsets(ctx, group, kadm.OffsetsFromRecords(kgo.Record{Topic: topic, Partition: 0}).TopicsSet())
		if !errors.Is(err, kerr.NotCoordinator) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("DeleteOffsets: %v", err)
	}
	if !errors.Is(ds.Error(), kerr.GroupSubscribedToTopic) {
		t.Fatalf("DeleteOffsets with a subscribed member: %v, want GROUP_SUBSCRIBED_TO_TOPIC", ds.Error())
	}
	dg, err := adm.DeleteGroup(ctx, group)
	if err == nil {
		err = dg.Err
	}
	if !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatalf("DeleteGroup with a member: %v, want NON_EMPTY_GROUP", err)
	}
	member.Close()
	waitGroupState(t, adm, group, "Empty")

	ds, err = adm.DeleteOffsets(ctx, group, kadm.OffsetsFromRecords(kgo.Record{Topic: topic, Partition: 0}).TopicsSet())
	if err != nil || ds.Error() != nil {
		t.Fatalf("DeleteOffsets of an empty group: %v %v", err, ds.Error())
	}
	offs = committed(t, c, group, topic, 4)
	if offs[0] != -1 || offs[1] != int64(len(acked[1])) {
		t.Fatalf("after OffsetDelete of partition 0: %v", offs)
	}

	checkOffsetsTopicRecords(t, c, group, topic)

	dg, err = adm.DeleteGroup(ctx, group)
	if err != nil || dg.Err != nil {
		t.Fatalf("DeleteGroup: %v %v", err, dg.Err)
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil || slicesContains(listed.Groups(), group) {
		t.Fatalf("ListGroups after DeleteGroup: %v %v", listed.Groups(), err)
	}
	if offs := committed(t, c, group, topic, 4); offs[1] != -1 {
		t.Fatalf("offsets survive DeleteGroup: %v", offs)
	}
	dg, err = adm.DeleteGroup(ctx, group)
	if err == nil {
		err = dg.Err
	}
	if !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("DeleteGroup of a deleted group: %v, want GROUP_ID_NOT_FOUND", err)
	}
}

// newProducer spreads records over every partition.
func newProducer(t testing.TB, c *Cluster) *kgo.Client {
	return newClient(t, c, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func waitGroupState(t testing.TB, adm *kadm.Client, group, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		d, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			if last = d[group].State; last == state {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("group %s: state %s, want %s", group, last, state)
}

// checkOffsetsTopicRecords reads __consumer_offsets like any topic and
// decodes its records with kmsg's schemas for it.
func checkOffsetsTopicRecords(t testing.TB, c *Cluster, group, topic string) {
	t.Helper()
	cl := newClient(t, c, kgo.ConsumeTopics("__consumer_offsets"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var commits, metas, tombstones int
	for n := int64(0); n < want; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of __consumer_offsets", n, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			ver := int16(r.Key[0])<<8 | int16(r.Key[1])
			switch ver {
			case 0, 1:
				k := kmsg.NewOffsetCommitKey()
				if err := k.ReadFrom(r.Key); err != nil || k.Group != group || k.Topic != topic {
					t.Errorf("offset commit key %x: %+v %v", r.Key, k, err)
				}
				if r.Value == nil {
					tombstones++
					return
				}
				v := kmsg.NewOffsetCommitValue()
				if err := v.ReadFrom(r.Value); err != nil || v.Offset < 0 {
					t.Errorf("offset commit value %x: %+v %v", r.Value, v, err)
				}
				commits++
			case 2:
				k := kmsg.NewGroupMetadataKey()
				if err := k.ReadFrom(r.Key); err != nil || k.Group != group {
					t.Errorf("group metadata key %x: %+v %v", r.Key, k, err)
				}
				if r.Value == nil {
					tombstones++
					return
				}
				v := kmsg.NewGroupMetadataValue()
				if err := v.ReadFrom(r.Value); err != nil || v.ProtocolType != "consumer" {
					t.Errorf("group metadata value %x: %+v %v", r.Value, v, err)
				}
				for _, m := range v.Members {
					if !strings.HasPrefix(m.MemberID, "kgo") || m.SessionTimeoutMillis <= 0 {
						t.Errorf("group metadata member %+v", m)
					}
					var a kmsg.ConsumerMemberAssignment
					if err := a.ReadFrom(m.Assignment); err != nil {
						t.Errorf("member assignment: %v", err)
					}
				}
				metas++
			default:
				t.Errorf("unknown key version %d in __consumer_offsets", ver)
			}
		})
	}
	if commits == 0 || metas == 0 || tombstones == 0 {
		t.Fatalf("__consumer_offsets holds %d commits, %d group metadata records, %d tombstones", commits, metas, tombstones)
	}
}

var _ sync.Mutex

// TestGroupStaticMember: a kgo member with a group.instance.id does not
// leave when it closes; the same instance restarted takes its place (the
// old member id is replaced, not left waiting for its session timeout) and
// resumes from the commits.
func TestGroupStaticMember(t *testing.T) {
	c := StartCluster(t, groupOptions(3))
	const topic, group = "static-topic", "static-group"
	createTopic(t, c, topic, 3, 3)
	produceN(t, newProducer(t, c), topic, 30)
	first := consumeGroup(t, c, group, topic, 30, kgo.InstanceID("instance-1"))
	if len(first) != 30 {
		t.Fatalf("first run consumed %d distinct records, want 30", len(first))
	}
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := adm.DescribeGroups(ctx, group)
	if err != nil || d[group].State != "Stable" || len(d[group].Members) != 1 {
		t.Fatalf("a closed static member stays in the group: %+v %v", d[group], err)
	}
	old := d[group].Members[0].MemberID

	var more []*kgo.Record
	for i := 0; i < 30; i++ {
		more = append(more, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("second-%02d", i))})
	}
	if err := newProducer(t, c).ProduceSync(ctx, more...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	second := consumeGroup(t, c, group, topic, 30, kgo.InstanceID("instance-1"))
	for v := range second {
		if !strings.HasPrefix(v, "second-") {
			t.Fatalf("the restarted static member reprocessed %s", v)
		}
	}
	d, err = adm.DescribeGroups(ctx, group)
	if err != nil || len(d[group].Members) != 1 || d[group].Members[0].MemberID == old {
		t.Fatalf("after the restart: %+v %v (old member id %s)", d[group], err, old)
	}
	if id := d[group].Members[0].InstanceID; id == nil || *id != "instance-1" {
		t.Fatalf("instance id %v", id)
	}
}
