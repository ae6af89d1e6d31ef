package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce: v0-12.
//
// Every partition's records are checked here before the Host sees them:
// acks must be -1, 0 or 1 (else INVALID_REQUIRED_ACKS for every partition),
// the topic name legal (INVALID_TOPIC_EXCEPTION), the records whole v2
// batches with a good CRC32C and records (CORRUPT_MESSAGE), and message
// format v0/v1 (magic < 2) is refused with UNSUPPORTED_FOR_MESSAGE_FORMAT.
// v0-2 are advertised only because librdkafka turns compression off
// without them; like Kafka 4 we accept them carrying v2 batches only.
// Valid partitions go to Host.Produce concurrently; the response keeps the
// request's order. Produce requests are ordered per connection (see conn).
//
// acks=0 gets no response; as Kafka does, a failure of any partition then
// closes the connection, the only way to tell the client.
//
// Version notes: v1 throttle; v2 LogAppendTime; v3 transactional id (only
// null is served by the Host today); v5 LogStartOffset; v8 ErrorMessage;
// v9 flexible; v10 KIP-951 CurrentLeader and broker endpoints on
// NOT_LEADER_OR_FOLLOWER. v13 (topic ids) is not offered.

func init() { register(0, 0, 12, true, handleProduce) }

func handleProduce(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	host := r.c.s.host

	type job struct {
		sp  *kmsg.ProduceResponseTopicPartition
		req protocol.ProduceRequest
	}
	var jobs []job
	acksOK := req.Acks == -1 || req.Acks == 0 || req.Acks == 1
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		nameOK := validTopicName(rt.Topic)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := &st.Partitions[pi]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case !acksOK:
				setProduceErr(sp, protocol.ErrInvalidRequiredAcks, fmt.Sprintf("invalid required acks %d: want -1, 0 or 1", req.Acks))
			case !nameOK:
				setProduceErr(sp, protocol.ErrInvalidTopicException, "invalid topic name")
			default:
				if code, msg := validateRecords(rp.Records); code != protocol.ErrNone {
					setProduceErr(sp, code, msg)
					continue
				}
				jobs = append(jobs, job{sp: sp, req: protocol.ProduceRequest{
					Topic:     rt.Topic,
					Partition: rp.Partition,
					Acks:      req.Acks,
					Timeout:   time.Duration(req.TimeoutMillis) * time.Millisecond,
					Records:   rp.Records,
				}})
			}
		}
	}

	r.parallel(len(jobs), func(i int) {
		j := jobs[i]
		res := host.Produce(ctx, j.req)
		if res.Err != protocol.ErrNone {
			setProduceErr(j.sp, res.Err, res.ErrMsg)
			return
		}
		j.sp.BaseOffset = res.BaseOffset
		j.sp.LogAppendTime = res.LogAppendTime
		j.sp.LogStartOffset = res.LogStartOffset
	}, func(i int) {
		setProduceErr(jobs[i].sp, protocol.ErrUnknownServerError, "internal error")
	})

	if req.Acks == 0 {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return nil, fmt.Errorf("acks=0 produce to %s[%d] failed with error %d", t.Topic, p.Partition, p.ErrorCode)
				}
			}
		}
		return nil, nil
	}
	if req.Version >= 10 {
		addProduceLeaderHints(ctx, host, resp)
	}
	return resp, nil
}

func setProduceErr(sp *kmsg.ProduceResponseTopicPartition, code protocol.ErrorCode, msg string) {
	sp.ErrorCode = int16(code)
	sp.ErrorMessage = nullable(msg)
	sp.BaseOffset = -1
	sp.LogAppendTime = -1
	sp.LogStartOffset = -1
}

// addProduceLeaderHints fills KIP-951's CurrentLeader of partitions that
// answered NOT_LEADER_OR_FOLLOWER, and the endpoints of those leaders.
func addProduceLeaderHints(ctx context.Context, host protocol.Host, resp *kmsg.ProduceResponse) {
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
	for _, b := range brokers {
		if used[b.ID] {
			sb := kmsg.NewProduceResponseBroker()
			sb.NodeID, sb.Host, sb.Port, sb.Rack = b.ID, b.Host, b.Port, nullable(b.Rack)
			resp.Brokers = append(resp.Brokers, sb)
		}
	}
}
