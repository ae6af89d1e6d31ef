package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete: v0 (offered when the Host is a protocol.GroupHost).
//
// Deletes committed offsets of a group, except for topics its members
// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC per partition). Ordered.

func init() { registerGroup(47, 0, 0, true, handleOffsetDelete) }

func handleOffsetDelete(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	hreq := protocol.OffsetDeleteRequest{Group: req.Group}
	for _, t := range req.Topics {
		tp := protocol.TopicPartitions{Topic: t.Topic}
		for _, p := range t.Partitions {
			tp.Partitions = append(tp.Partitions, p.Partition)
		}
		hreq.Topics = append(hreq.Topics, tp)
	}
	res := r.c.s.groups.OffsetDelete(ctx, hreq)
	resp.ErrorCode = int16(res.Err)
	if res.Err != protocol.ErrNone {
		return resp, nil
	}
	for _, o := range res.Partitions {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != o.Topic {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = o.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewOffsetDeleteResponseTopicPartition()
		rp.Partition, rp.ErrorCode = o.Partition, int16(o.Err)
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return resp, nil
}
