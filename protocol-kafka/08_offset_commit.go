package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit: v0-9 (offered when the Host is a protocol.GroupHost).
//
// Ordered: a connection's commits take effect in request order, so a
// client's committed offsets never move backwards by reordering. v0 (no
// generation or member) is a simple commit, as generation -1.
//
// Version notes: v1 generation, member id, a per-partition timestamp
// (ignored); v2-v4 retention time (ignored: offsets do not expire); v3
// throttle; v5 drops retention; v6 leader epoch; v7 group instance id; v8
// flexible; v9 nothing new for classic groups (KIP-848's member epoch is
// the generation). v10 (topic ids) is not offered.

func init() { registerGroup(8, 0, 9, true, handleOffsetCommit) }

func handleOffsetCommit(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	hreq := protocol.OffsetCommitRequest{Group: req.Group, Generation: -1}
	if req.Version >= 1 {
		hreq.Generation, hreq.MemberID, hreq.InstanceID = req.Generation, req.MemberID, req.InstanceID
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			epoch := int32(-1)
			if req.Version >= 6 {
				epoch = p.LeaderEpoch
			}
			hreq.Partitions = append(hreq.Partitions, protocol.OffsetCommitPartition{
				Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: epoch, Metadata: p.Metadata,
			})
		}
	}
	res := r.c.s.groups.OffsetCommit(ctx, hreq)
	i := 0
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			if i < len(res.Partitions) {
				rp.ErrorCode = int16(res.Partitions[i])
			} else {
				rp.ErrorCode = int16(protocol.ErrUnknownServerError)
			}
			i++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
