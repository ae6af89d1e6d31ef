package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
)

// MetadataGroup is the Raft group that holds the cluster metadata.
const MetadataGroup consensus.GroupID = 1

// firstPartitionGroup is the first group id handed to a partition.
const firstPartitionGroup = 1000

// topicMeta is one topic in the cluster metadata.
type topicMeta struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Partitions []partitionMeta   `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

type partitionMeta struct {
	Group    consensus.GroupID `json:"group"`
	Replicas []int32           `json:"replicas"`
}

// metaState is the replicated cluster metadata.
type metaState struct {
	Topics    map[string]*topicMeta `json:"topics"`
	NextGroup consensus.GroupID     `json:"next_group"`
}

func (s *metaState) clone() *metaState {
	c := &metaState{Topics: make(map[string]*topicMeta, len(s.Topics)), NextGroup: s.NextGroup}
	for k, t := range s.Topics {
		tc := *t
		tc.Partitions = append([]partitionMeta(nil), t.Partitions...)
		tc.Configs = maps.Clone(t.Configs)
		c.Topics[k] = &tc
	}
	return c
}

// metaCmd is one metadata change, JSON in the log.
type metaCmd struct {
	Op string `json:"op"` // create_topic, delete_topic, create_partitions, alter_configs

	Topic    string            `json:"topic"`
	ID       [16]byte          `json:"id,omitempty"`
	Replicas [][]int32         `json:"replicas,omitempty"` // create_topic, create_partitions: the new partitions
	Configs  map[string]string `json:"configs,omitempty"`  // create_topic; alter_configs: the new full set
}

// metadata is the metadata group's state machine. Readers get an immutable
// copy (view) that is replaced on every apply.
type metadata struct {
	mu      sync.Mutex
	st      *metaState
	view    *metaState // immutable; swapped under mu
	results map[uint64]applyResult
	changed chan struct{} // closed and replaced on every change
	leader  consensus.NodeID
	term    uint64
	applied uint64 // index of the last entry Apply saw
}

func newMetadata() *metadata {
	st := &metaState{Topics: map[string]*topicMeta{}, NextGroup: firstPartitionGroup}
	return &metadata{st: st, view: st.clone(), results: map[uint64]applyResult{}, changed: make(chan struct{})}
}

var _ consensus.StateMachine = (*metadata)(nil)

// current returns the latest metadata view and a channel closed when it
// changes.
func (m *metadata) current() (*metaState, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view, m.changed
}

func (m *metadata) publish() {
	m.view = m.st.clone()
	close(m.changed)
	m.changed = make(chan struct{})
}

// Apply implements consensus.StateMachine.
func (m *metadata) Apply(ctx context.Context, entries []consensus.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		var c metaCmd
		var res applyResult
		if err := json.Unmarshal(e.Data, &c); err != nil {
			res = applyResult{err: protocol.ErrUnknownServerError, msg: fmt.Sprintf("bad metadata command: %v", err)}
		} else {
			res = m.applyCmd(&c)
		}
		m.results[e.Index] = res
		m.applied = e.Index
		if e.Index > resultWindow {
			delete(m.results, e.Index-resultWindow)
		}
	}
	m.publish()
	return nil
}

func (m *metadata) applyCmd(c *metaCmd) applyResult {
	t := m.st.Topics[c.Topic]
	switch c.Op {
	case "create_topic":
		if t != nil {
			return applyResult{err: protocol.ErrTopicAlreadyExists, msg: fmt.Sprintf("topic %q already exists", c.Topic)}
		}
		t = &topicMeta{Name: c.Topic, ID: c.ID, Configs: c.Configs}
		m.st.Topics[c.Topic] = t
		m.addPartitions(t, c.Replicas)
	case "delete_topic":
		if t == nil {
			return applyResult{err: protocol.ErrUnknownTopicOrPartition, msg: fmt.Sprintf("topic %q does not exist", c.Topic)}
		}
		delete(m.st.Topics, c.Topic)
	case "create_partitions":
		if t == nil {
			return applyResult{err: protocol.ErrUnknownTopicOrPartition, msg: fmt.Sprintf("topic %q does not exist", c.Topic)}
		}
		m.addPartitions(t, c.Replicas)
	case "alter_configs":
		if t == nil {
			return applyResult{err: protocol.ErrUnknownTopicOrPartition, msg: fmt.Sprintf("topic %q does not exist", c.Topic)}
		}
		t.Configs = c.Configs
	default:
		return applyResult{err: protocol.ErrUnknownServerError, msg: fmt.Sprintf("unknown metadata op %q", c.Op)}
	}
	return applyResult{}
}

func (m *metadata) addPartitions(t *topicMeta, replicas [][]int32) {
	for _, r := range replicas {
		t.Partitions = append(t.Partitions, partitionMeta{Group: m.st.NextGroup, Replicas: r})
		m.st.NextGroup++
	}
}

// Snapshot implements consensus.StateMachine: the whole state at the
// applied index (the metadata log can be dropped up to it).
func (m *metadata) Snapshot(ctx context.Context) (consensus.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, err := json.Marshal(m.st)
	if err != nil {
		return consensus.Snapshot{}, err
	}
	return consensus.Snapshot{Index: m.applied, Data: data}, nil
}

// Restore implements consensus.StateMachine.
func (m *metadata) Restore(ctx context.Context, s consensus.Snapshot) error {
	st := &metaState{Topics: map[string]*topicMeta{}, NextGroup: firstPartitionGroup}
	if len(s.Data) > 0 {
		if err := json.Unmarshal(s.Data, st); err != nil {
			return fmt.Errorf("metadata: restore: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st = st
	m.applied = s.Index
	clear(m.results)
	m.publish()
	return nil
}

// LeaderChanged implements consensus.StateMachine.
func (m *metadata) LeaderChanged(ctx context.Context, leader consensus.NodeID, term uint64) {
	m.mu.Lock()
	m.leader, m.term = leader, term
	m.mu.Unlock()
}

func (m *metadata) takeResult(index uint64) (applyResult, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[index]
	delete(m.results, index)
	return r, ok
}
