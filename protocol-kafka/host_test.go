package kafka

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
)

// testHost is a small in-memory protocol.Host used only to exercise the
// protocol layer in these tests: topics are maps of partitions holding the
// produced batches, with base offsets filled in on append. It has none of
// the broker's semantics (no replication, idempotence or retention), and
// it is not the broker: core/broker implements the real Host.
type testHost struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every append
	topics   map[string]*testTopic
	order    []string // topic creation order
	port     int32
	nextPID  int64
	produced int // Host.Produce calls
	noAuto   bool
	noWait   bool            // Fetch answers at once (fuzzing)
	moved    map[string]bool // topics whose partitions answer NOT_LEADER_OR_FOLLOWER

	// hooks for tests, may be nil
	onProduce  func(protocol.ProduceRequest)
	onMetadata func([]string)
}

type testTopic struct {
	id      [16]byte
	configs map[string]string
	parts   []*testPartition
}

type testPartition struct {
	batches [][]byte
	next    int64
}

// maxTestPartitions keeps fuzzed CreateTopics from allocating without end.
const maxTestPartitions = 1000

func newTestHost() *testHost {
	return &testHost{changed: make(chan struct{}), topics: make(map[string]*testTopic), nextPID: 1000}
}

// setAddr tells the host the server's address, for Cluster.
func (h *testHost) setAddr(addr string) {
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	h.mu.Lock()
	h.port = int32(p)
	h.mu.Unlock()
}

func (h *testHost) produceCalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.produced
}

func (h *testHost) Cluster(context.Context) protocol.Cluster {
	h.mu.Lock()
	defer h.mu.Unlock()
	brokers := []protocol.Broker{{ID: 1, Host: "127.0.0.1", Port: h.port}}
	if len(h.moved) > 0 {
		brokers = append(brokers, protocol.Broker{ID: 2, Host: "127.0.0.2", Port: 9092, Rack: "r2"})
	}
	return protocol.Cluster{ID: "test-cluster", Controller: 1, Brokers: brokers}
}

func (h *testHost) createLocked(name string, partitions int32, configs map[string]string) *testTopic {
	t := &testTopic{configs: configs}
	_, _ = rand.Read(t.id[:])
	for range partitions {
		t.parts = append(t.parts, &testPartition{})
	}
	h.topics[name] = t
	h.order = append(h.order, name)
	return t
}

func (h *testHost) Metadata(_ context.Context, names []string, autoCreate bool) ([]protocol.TopicMetadata, error) {
	if h.onMetadata != nil {
		h.onMetadata(names)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if names == nil {
		names = h.order
	}
	var out []protocol.TopicMetadata
	for _, n := range names {
		t, ok := h.topics[n]
		if !ok && autoCreate && !h.noAuto {
			t, ok = h.createLocked(n, 1, nil), true
		}
		if !ok {
			out = append(out, protocol.TopicMetadata{Name: n, Err: protocol.ErrUnknownTopicOrPartition})
			continue
		}
		m := protocol.TopicMetadata{Name: n, ID: t.id}
		for i := range t.parts {
			pm := protocol.PartitionMetadata{Partition: int32(i), Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}
			if h.moved[n] {
				pm.Leader, pm.LeaderEpoch, pm.Replicas, pm.ISR = 2, 7, []int32{2}, []int32{2}
			}
			m.Partitions = append(m.Partitions, pm)
		}
		out = append(out, m)
	}
	return out, nil
}

func (h *testHost) partition(topic string, p int32) (*testPartition, protocol.ErrorCode) {
	t, ok := h.topics[topic]
	if !ok || p < 0 || int(p) >= len(t.parts) {
		return nil, protocol.ErrUnknownTopicOrPartition
	}
	return t.parts[p], protocol.ErrNone
}

func (h *testHost) Produce(_ context.Context, req protocol.ProduceRequest) protocol.ProduceResult {
	if h.onProduce != nil {
		h.onProduce(req)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.produced++
	if h.moved[req.Topic] {
		return protocol.ProduceResult{Err: protocol.ErrNotLeaderOrFollower}
	}
	p, code := h.partition(req.Topic, req.Partition)
	if code != protocol.ErrNone {
		return protocol.ProduceResult{Err: code}
	}
	base := p.next
	for b := req.Records; len(b) >= batchHeaderBytes; {
		n := int(binary.BigEndian.Uint32(b[batchLengthOffset:])) + batchLogOverhead
		batch := append([]byte(nil), b[:n]...)
		binary.BigEndian.PutUint64(batch, uint64(p.next))
		p.next += int64(binary.BigEndian.Uint32(batch[23:])) + 1 // last offset delta
		p.batches = append(p.batches, batch)
		b = b[n:]
	}
	close(h.changed)
	h.changed = make(chan struct{})
	return protocol.ProduceResult{BaseOffset: base, LogAppendTime: -1, LogStartOffset: 0}
}

func (h *testHost) Fetch(ctx context.Context, req protocol.FetchRequest) []protocol.FetchResult {
	timer := time.NewTimer(req.MaxWait)
	defer timer.Stop()
	for {
		h.mu.Lock()
		out := make([]protocol.FetchResult, len(req.Partitions))
		total := 0
		for i, fp := range req.Partitions {
			r := &out[i]
			r.Topic, r.Partition = fp.Topic, fp.Partition
			p, code := h.partition(fp.Topic, fp.Partition)
			if h.moved[fp.Topic] {
				code = protocol.ErrNotLeaderOrFollower
			}
			if code != protocol.ErrNone {
				r.Err = code
				continue
			}
			r.HighWatermark, r.LastStableOffset = p.next, p.next
			if fp.Offset > p.next || fp.Offset < 0 {
				r.Err = protocol.ErrOffsetOutOfRange
				continue
			}
			for _, b := range p.batches {
				last := int64(binary.BigEndian.Uint64(b)) + int64(binary.BigEndian.Uint32(b[23:]))
				if last < fp.Offset {
					continue
				}
				if len(r.Records) > 0 && len(r.Records)+len(b) > int(fp.MaxBytes) {
					break
				}
				r.Records = append(r.Records, b...)
			}
			total += len(r.Records)
		}
		changed := h.changed
		h.mu.Unlock()
		if total > 0 || req.MinBytes <= 0 || h.noWait {
			return out
		}
		select {
		case <-changed:
		case <-timer.C:
			return out
		case <-ctx.Done():
			return out
		}
	}
}

func (h *testHost) ListOffsets(_ context.Context, req protocol.ListOffsetsRequest) protocol.ListOffsetsResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, code := h.partition(req.Topic, req.Partition)
	if code != protocol.ErrNone {
		return protocol.ListOffsetsResult{Err: code}
	}
	switch req.Timestamp {
	case -2:
		return protocol.ListOffsetsResult{Offset: 0, Timestamp: -1}
	case -1:
		return protocol.ListOffsetsResult{Offset: p.next, Timestamp: -1}
	}
	return protocol.ListOffsetsResult{Offset: p.next, Timestamp: -1}
}

func (h *testHost) CreateTopics(_ context.Context, req []protocol.CreateTopic, validateOnly bool) []protocol.TopicResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []protocol.TopicResult
	for _, c := range req {
		if _, ok := h.topics[c.Name]; ok {
			out = append(out, protocol.TopicResult{Name: c.Name, Err: protocol.ErrTopicAlreadyExists, ErrMsg: "exists"})
			continue
		}
		n := c.NumPartitions
		if n == -1 {
			n = 1
		}
		if n > maxTestPartitions {
			out = append(out, protocol.TopicResult{Name: c.Name, Err: protocol.ErrInvalidPartitions})
			continue
		}
		res := protocol.TopicResult{Name: c.Name, NumPartitions: n, ReplicationFactor: 1}
		if !validateOnly {
			res.ID = h.createLocked(c.Name, n, c.Configs).id
		}
		for k, v := range c.Configs {
			res.Configs = append(res.Configs, protocol.ConfigEntry{Name: k, Value: &v, Source: protocol.ConfigSourceDynamicTopic})
		}
		out = append(out, res)
	}
	return out
}

func (h *testHost) DeleteTopics(_ context.Context, names []string) []protocol.TopicResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []protocol.TopicResult
	for _, n := range names {
		t, ok := h.topics[n]
		if !ok {
			out = append(out, protocol.TopicResult{Name: n, Err: protocol.ErrUnknownTopicOrPartition})
			continue
		}
		delete(h.topics, n)
		for i, o := range h.order {
			if o == n {
				h.order = append(h.order[:i:i], h.order[i+1:]...)
				break
			}
		}
		out = append(out, protocol.TopicResult{Name: n, ID: t.id})
	}
	return out
}

func (h *testHost) CreatePartitions(_ context.Context, req []protocol.CreatePartitions, validateOnly bool) []protocol.TopicResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []protocol.TopicResult
	for _, c := range req {
		t, ok := h.topics[c.Topic]
		switch {
		case !ok:
			out = append(out, protocol.TopicResult{Name: c.Topic, Err: protocol.ErrUnknownTopicOrPartition})
		case int(c.Count) <= len(t.parts) || c.Count > maxTestPartitions:
			out = append(out, protocol.TopicResult{Name: c.Topic, Err: protocol.ErrInvalidPartitions, ErrMsg: "can only grow"})
		default:
			for !validateOnly && len(t.parts) < int(c.Count) {
				t.parts = append(t.parts, &testPartition{})
			}
			out = append(out, protocol.TopicResult{Name: c.Topic})
		}
	}
	return out
}

func (h *testHost) DescribeConfigs(_ context.Context, req []protocol.ConfigResource) []protocol.ConfigResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []protocol.ConfigResult
	for _, r := range req {
		res := protocol.ConfigResult{Type: r.Type, Name: r.Name}
		t, ok := h.topics[r.Name]
		if r.Type != 2 || !ok {
			res.Err = protocol.ErrUnknownTopicOrPartition
			out = append(out, res)
			continue
		}
		retention := "604800000"
		res.Configs = append(res.Configs, protocol.ConfigEntry{Name: "retention.ms", Value: &retention, Default: true, Source: protocol.ConfigSourceDefault})
		for k, v := range t.configs {
			res.Configs = append(res.Configs, protocol.ConfigEntry{Name: k, Value: &v, Source: protocol.ConfigSourceDynamicTopic})
		}
		out = append(out, res)
	}
	return out
}

func (h *testHost) InitProducerID(_ context.Context, req protocol.InitProducerIDRequest) protocol.InitProducerIDResult {
	if req.TransactionalID != nil {
		return protocol.InitProducerIDResult{Err: protocol.ErrInvalidRequest}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextPID++
	return protocol.InitProducerIDResult{ProducerID: h.nextPID}
}
