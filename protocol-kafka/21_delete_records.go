package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/protocol"
)

// DeleteRecords: v0-2 (offered when the Host is a protocol.AdminHost).
//
// Every partition goes to AdminHost.DeleteRecords in one call; the broker
// answers NOT_LEADER_OR_FOLLOWER for partitions it does not lead (clients
// send each partition to its leader). v2 is flexible.

func init() { registerAdmin(21, 0, 2, true, handleDeleteRecords) }

func handleDeleteRecords(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	var hreq []protocol.DeleteRecordsPartition
	var slots []*kmsg.DeleteRecordsResponseTopicPartition
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			if !validTopicName(rt.Topic) {
				sp.ErrorCode = int16(protocol.ErrInvalidTopicException)
				continue
			}
			hreq = append(hreq, protocol.DeleteRecordsPartition{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset})
			slots = append(slots, sp)
		}
	}
	if len(hreq) == 0 {
		return resp, nil
	}
	var results []protocol.DeleteRecordsResult
	r.safely(0, func(int) { results = r.c.s.admin.DeleteRecords(ctx, hreq) }, func(int) { results = nil })
	for i, sp := range slots {
		if i >= len(results) {
			sp.ErrorCode = int16(protocol.ErrUnknownServerError)
			continue
		}
		sp.ErrorCode, sp.LowWatermark = int16(results[i].Err), results[i].LowWatermark
	}
	return resp, nil
}
