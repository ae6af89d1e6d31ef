package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-10.
//
// Each partition goes to Host.ListOffsets, concurrently; the response
// keeps the request's order. Timestamps: -1 latest, -2 earliest, -3 the
// record with the largest timestamp (v7+), else the first offset at or
// after the timestamp. Without tiered storage, -4 (earliest local, v8+) is
// the earliest offset, and -5 (latest tiered, v9+) has no offset: it
// answers offset and timestamp -1 once the Host knows the partition.
//
// Version notes: v1 single offset and timestamp (v0's offset list is not
// offered); v2 isolation level (no transactions: both levels read the
// same); v4 leader epochs; v6 flexible; v10 TimeoutMillis (the Host
// answers without waiting).

func init() { register(2, 1, 10, false, handleListOffsets) }

const (
	earliestLocalTimestamp = -4
	latestTieredTimestamp  = -5
)

func handleListOffsets(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)

	type job struct {
		sp  *kmsg.ListOffsetsResponseTopicPartition
		req protocol.ListOffsetsRequest
	}
	var jobs []job
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := &resp.Topics[ti]
		*st = kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			*sp = kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			jobs = append(jobs, job{sp: sp, req: protocol.ListOffsetsRequest{
				Topic:     rt.Topic,
				Partition: rp.Partition,
				Timestamp: rp.Timestamp,
			}})
		}
	}

	r.parallel(len(jobs), func(i int) {
		j := jobs[i]
		ts := j.req.Timestamp
		switch ts {
		case earliestLocalTimestamp:
			j.req.Timestamp = -2
		case latestTieredTimestamp:
			j.req.Timestamp = -1
		}
		res := r.c.s.host.ListOffsets(ctx, j.req)
		setListOffsets(j.sp, res.Err, res.Timestamp, res.Offset, res.LeaderEpoch)
		if res.Err == protocol.ErrNone && ts == latestTieredTimestamp {
			setListOffsets(j.sp, protocol.ErrNone, -1, -1, -1)
		}
	}, func(i int) {
		setListOffsets(jobs[i].sp, protocol.ErrUnknownServerError, -1, -1, -1)
	})
	return resp, nil
}

func setListOffsets(sp *kmsg.ListOffsetsResponseTopicPartition, code protocol.ErrorCode, ts, offset int64, epoch int32) {
	sp.ErrorCode = int16(code)
	if code != protocol.ErrNone {
		ts, offset, epoch = -1, -1, -1
	}
	sp.Timestamp, sp.Offset, sp.LeaderEpoch = ts, offset, epoch
}
