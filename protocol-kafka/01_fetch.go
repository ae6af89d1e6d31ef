package kafka

import (
	"context"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch: v4-16.
//
// The whole request goes to Host.Fetch, which long-polls up to MaxWait for
// MinBytes and bounds the answer by MaxBytes and each partition's
// PartitionMaxBytes; results come back in request order.
//
// Fetch sessions (KIP-227) are not kept: every response carries session
// id 0, which tells the client that no session was created, so it keeps
// sending full fetch requests (Kafka does the same when its session cache
// is full or disabled). A request for an incremental fetch of an existing
// session (epoch other than 0 or -1) gets FETCH_SESSION_ID_NOT_FOUND and
// the client starts over with a full one.
//
// Version notes: v4 isolation level, LastStableOffset, aborted
// transactions (always none: no transactions yet); v5 LogStartOffset; v7
// sessions; v9 CurrentLeaderEpoch (passed to the Host); v11 rack,
// PreferredReadReplica (always -1); v12 flexible, KIP-951 CurrentLeader on
// NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH; v13 topic ids (resolved to
// names through Host.Metadata; unknown ids get UNKNOWN_TOPIC_ID); v15
// replica state (replica fetches are not served over Kafka); v16 broker
// endpoints for the CurrentLeader hints.

func init() { register(1, 4, 16, false, handleFetch) }

const errFetchSessionIDNotFound = 70

func handleFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SessionID = 0
	if req.Version >= 7 && req.SessionEpoch != 0 && req.SessionEpoch != -1 {
		resp.ErrorCode = errFetchSessionIDNotFound
		return resp, nil
	}

	var names map[[16]byte]string
	var idErr bool
	if req.Version >= 13 {
		ids := make([][16]byte, len(req.Topics))
		for i, t := range req.Topics {
			ids[i] = t.TopicID
		}
		var err error
		if names, err = r.c.s.ids.names(ctx, ids); err != nil {
			r.c.log.Warn("fetch: resolving topic ids failed", "err", err)
			idErr = true
		}
	}

	var (
		hreq = protocol.FetchRequest{
			MaxWait:  time.Duration(req.MaxWaitMillis) * time.Millisecond,
			MinBytes: req.MinBytes,
			MaxBytes: req.MaxBytes,
		}
		slots []*kmsg.FetchResponseTopicPartition // slots[i] answers hreq.Partitions[i]
	)
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		code := protocol.ErrNone
		if req.Version >= 13 {
			name, ok := names[rt.TopicID]
			switch {
			case idErr:
				code = protocol.ErrUnknownServerError
			case !ok:
				code = protocol.ErrUnknownTopicID
			}
			st.Topic = name
		}
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			if code != protocol.ErrNone {
				setFetchErr(sp, code)
				continue
			}
			epoch := int32(-1)
			if req.Version >= 9 {
				epoch = rp.CurrentLeaderEpoch
			}
			hreq.Partitions = append(hreq.Partitions, protocol.FetchPartition{
				Topic:       st.Topic,
				Partition:   rp.Partition,
				Offset:      rp.FetchOffset,
				MaxBytes:    rp.PartitionMaxBytes,
				LeaderEpoch: epoch,
			})
			slots = append(slots, sp)
		}
	}

	if len(hreq.Partitions) > 0 {
		var results []protocol.FetchResult
		r.safely(0, func(int) { results = r.c.s.host.Fetch(ctx, hreq) }, func(int) { results = nil })
		for i, sp := range slots {
			if i >= len(results) {
				setFetchErr(sp, protocol.ErrUnknownServerError)
				continue
			}
			res := &results[i]
			if res.Err != protocol.ErrNone && res.Err != protocol.ErrOffsetOutOfRange {
				setFetchErr(sp, res.Err)
				continue
			}
			sp.ErrorCode = int16(res.Err)
			sp.HighWatermark = res.HighWatermark
			sp.LastStableOffset = res.LastStableOffset
			sp.LogStartOffset = res.LogStartOffset
			sp.RecordBatches = emptyRecords(res.Records)
		}
	}

	if req.Version >= 12 {
		addFetchLeaderHints(ctx, r.c.s.host, resp)
	}
	return resp, nil
}

func setFetchErr(sp *kmsg.FetchResponseTopicPartition, code protocol.ErrorCode) {
	sp.ErrorCode = int16(code)
	sp.HighWatermark = -1
	sp.LastStableOffset = -1
	sp.LogStartOffset = -1
	sp.RecordBatches = []byte{}
}

// emptyRecords turns no records into an empty, not a null, record set: kmsg
// encodes nil as length -1, which librdkafka refuses to parse.
func emptyRecords(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// addFetchLeaderHints fills KIP-951's CurrentLeader for partitions that
// answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH, and (v16+) the
// endpoints of those leaders.
func addFetchLeaderHints(ctx context.Context, host protocol.Host, resp *kmsg.FetchResponse) {
	var topics []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if needsLeaderHint(p.ErrorCode) {
				topics = append(topics, t.Topic)
				break
			}
		}
	}
	if len(topics) == 0 {
		return
	}
	hints, brokers := leaderHints(ctx, host, topics)
	used := make(map[int32]bool)
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if h, ok := hints[topicPartition{t.Topic, p.Partition}]; ok && needsLeaderHint(p.ErrorCode) {
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = h.leader, h.epoch
				used[h.leader] = true
			}
		}
	}
	if resp.Version < 16 {
		return
	}
	for _, b := range brokers {
		if used[b.ID] {
			sb := kmsg.NewFetchResponseBroker()
			sb.NodeID, sb.Host, sb.Port, sb.Rack = b.ID, b.Host, b.Port, nullable(b.Rack)
			resp.Brokers = append(resp.Brokers, sb)
		}
	}
}
