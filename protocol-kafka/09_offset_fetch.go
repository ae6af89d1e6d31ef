package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch: v0-9 (offered when the Host is a protocol.GroupHost).
//
// An unknown group answers offset -1 with no error (as Kafka does, not
// GROUP_ID_NOT_FOUND). Committed offsets are read from the coordinator's
// applied state, which holds every commit already answered, so
// RequireStable (v7+) has nothing to wait for (no transactional commits).
//
// Version notes: v1 nothing new; v2 null topics = all, top-level error;
// v3 throttle; v4 nothing new; v5 leader epoch; v6 flexible; v7
// RequireStable; v8 many groups per request (KIP-709); v9 member id and
// epoch (KIP-848, ignored for classic groups). v10 (topic ids) is not
// offered.

func init() { registerGroup(9, 0, 9, false, handleOffsetFetch) }

func handleOffsetFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, g := range req.Groups {
			hreq := protocol.OffsetFetchRequest{Group: g.Group}
			if g.Topics != nil {
				hreq.Topics = []protocol.TopicPartitions{}
				for _, t := range g.Topics {
					hreq.Topics = append(hreq.Topics, protocol.TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			res := r.c.s.groups.OffsetFetch(ctx, hreq)
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, int16(res.Err)
			for _, o := range res.Offsets {
				if n := len(rg.Topics); n == 0 || rg.Topics[n-1].Topic != o.Topic {
					rt := kmsg.NewOffsetFetchResponseGroupTopic()
					rt.Topic = o.Topic
					rg.Topics = append(rg.Topics, rt)
				}
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, int16(o.Err)
				rt := &rg.Topics[len(rg.Topics)-1]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil
	}
	hreq := protocol.OffsetFetchRequest{Group: req.Group}
	if req.Topics != nil || req.Version < 2 {
		hreq.Topics = []protocol.TopicPartitions{}
		for _, t := range req.Topics {
			hreq.Topics = append(hreq.Topics, protocol.TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	res := r.c.s.groups.OffsetFetch(ctx, hreq)
	if req.Version >= 2 {
		resp.ErrorCode = int16(res.Err)
	}
	if res.Err != protocol.ErrNone {
		// Per partition too: v0 and v1 have no group-level error.
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				res.Offsets = append(res.Offsets, protocol.FetchedOffset{Topic: t.Topic, Partition: p, Offset: -1, LeaderEpoch: -1, Err: res.Err})
			}
		}
	}
	for _, o := range res.Offsets {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != o.Topic {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = o.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewOffsetFetchResponseTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = o.Partition, o.Offset, o.LeaderEpoch, o.Metadata, int16(o.Err)
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return resp, nil
}
