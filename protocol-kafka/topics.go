package kafka

import (
	"context"
	"sync"

	"github.com/chronik-go/chronik/core/protocol"
)

// maxTopicNameLen is Kafka's limit on topic names.
const maxTopicNameLen = 249

// validTopicName reports whether name is a legal Kafka topic name:
// 1 to 249 of [a-zA-Z0-9._-], and neither "." nor "..".
func validTopicName(name string) bool {
	if name == "" || len(name) > maxTopicNameLen || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// topicIDs maps topic ids to names for the requests that name topics by id
// (Fetch v13+, Metadata v10+, DeleteTopics v6). It caches what Host.Metadata
// returned and checks every cached answer against the Host again (a topic
// deleted and created again keeps its name but gets a new id), so a stale
// entry is never served.
type topicIDs struct {
	host protocol.Host
	mu   sync.Mutex
	byID map[[16]byte]string
}

func newTopicIDs(host protocol.Host) *topicIDs {
	return &topicIDs{host: host, byID: make(map[[16]byte]string)}
}

// names resolves ids to names; unknown ids are missing from the result.
func (t *topicIDs) names(ctx context.Context, ids [][16]byte) (map[[16]byte]string, error) {
	out := make(map[[16]byte]string, len(ids))
	t.mu.Lock()
	missing := false
	for _, id := range ids {
		if n, ok := t.byID[id]; ok {
			out[id] = n
		} else {
			missing = true
		}
	}
	t.mu.Unlock()

	if !missing {
		// Confirm the cached names still carry these ids.
		names := make([]string, 0, len(out))
		for _, n := range out {
			names = append(names, n)
		}
		md, err := t.host.Metadata(ctx, names, false)
		if err != nil {
			return nil, err
		}
		current := make(map[string][16]byte, len(md))
		for _, m := range md {
			if m.Err == protocol.ErrNone {
				current[m.Name] = m.ID
			}
		}
		stale := false
		for id, n := range out {
			if current[n] != id {
				stale = true
			}
		}
		if !stale {
			return out, nil
		}
	}

	md, err := t.host.Metadata(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	byID := make(map[[16]byte]string, len(md))
	for _, m := range md {
		if m.Err == protocol.ErrNone && m.ID != ([16]byte{}) {
			byID[m.ID] = m.Name
		}
	}
	t.mu.Lock()
	t.byID = byID
	t.mu.Unlock()
	clear(out)
	for _, id := range ids {
		if n, ok := byID[id]; ok {
			out[id] = n
		}
	}
	return out, nil
}

// leaderHint is a partition's current leader and epoch.
type leaderHint struct {
	leader, epoch int32
}

// leaderHints looks up the current leader of the partitions of topics, for
// the KIP-951 hints of Produce v10+ and Fetch v12+ responses to partitions
// that answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH. It is best
// effort: on a Host error there are no hints and clients refresh their
// metadata as before.
func leaderHints(ctx context.Context, host protocol.Host, topics []string) (map[topicPartition]leaderHint, []protocol.Broker) {
	md, err := host.Metadata(ctx, topics, false)
	if err != nil {
		return nil, nil
	}
	hints := make(map[topicPartition]leaderHint)
	for _, t := range md {
		for _, p := range t.Partitions {
			if p.Leader >= 0 {
				hints[topicPartition{t.Name, p.Partition}] = leaderHint{p.Leader, p.LeaderEpoch}
			}
		}
	}
	return hints, host.Cluster(ctx).Brokers
}

type topicPartition struct {
	topic     string
	partition int32
}

// needsLeaderHint reports whether an error is one KIP-951 answers with the
// current leader.
func needsLeaderHint(code int16) bool {
	return code == int16(protocol.ErrNotLeaderOrFollower) || code == int16(protocol.ErrFencedLeaderEpoch)
}

// nullable returns a pointer to s, or nil when it is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
