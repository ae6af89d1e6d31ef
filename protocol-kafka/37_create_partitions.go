package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions: v0-3.
//
// A topic given twice answers INVALID_REQUEST for each entry; the rest go
// to Host.CreatePartitions in one call.
//
// Version notes: v1 nothing new on the wire; v2 flexible; v3 nothing new
// on the wire.

func init() { register(37, 0, 3, true, handleCreatePartitions) }

func handleCreatePartitions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)

	count := make(map[string]int, len(req.Topics))
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	var hreq []protocol.CreatePartitions
	slots := make(map[string]*kmsg.CreatePartitionsResponseTopic)
	for i, t := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = t.Topic
		if count[t.Topic] > 1 {
			st.ErrorCode = int16(protocol.ErrInvalidRequest)
			st.ErrorMessage = nullable("the request names the topic more than once")
			continue
		}
		cp := protocol.CreatePartitions{Topic: t.Topic, Count: t.Count}
		for _, a := range t.Assignment {
			cp.Assignment = append(cp.Assignment, a.Replicas)
		}
		hreq = append(hreq, cp)
		slots[t.Topic] = st
	}
	if len(hreq) == 0 {
		return resp, nil
	}

	var results []protocol.TopicResult
	r.safely(0, func(int) { results = r.c.s.host.CreatePartitions(ctx, hreq, req.ValidateOnly) }, func(int) { results = nil })
	for _, res := range results {
		st, ok := slots[res.Name]
		if !ok {
			continue
		}
		delete(slots, res.Name)
		st.ErrorCode, st.ErrorMessage = int16(res.Err), nullable(res.ErrMsg)
	}
	for _, st := range slots {
		st.ErrorCode = int16(protocol.ErrUnknownServerError)
	}
	return resp, nil
}
