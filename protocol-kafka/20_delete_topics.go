package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics: v0-6.
//
// Topics are named (v0-5 a list of names; v6 a name or an id per topic).
// A topic given twice answers INVALID_REQUEST, as does a v6 entry with
// both a name and an id; an unknown id answers UNKNOWN_TOPIC_ID. The rest
// go to Host.DeleteTopics in one call.
//
// Version notes: v1 throttle; v4 flexible; v5 ErrorMessage; v6 topic ids.

func init() { register(20, 0, 6, true, handleDeleteTopics) }

func handleDeleteTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)

	reqs := req.Topics
	if req.Version < 6 {
		reqs = make([]kmsg.DeleteTopicsRequestTopic, len(req.TopicNames))
		for i := range req.TopicNames {
			reqs[i] = kmsg.NewDeleteTopicsRequestTopic()
			reqs[i].Topic = &req.TopicNames[i]
		}
	}

	var ids [][16]byte
	for _, t := range reqs {
		if t.Topic == nil {
			ids = append(ids, t.TopicID)
		}
	}
	var byID map[[16]byte]string
	idErr := false
	if len(ids) > 0 {
		var err error
		if byID, err = r.c.s.ids.names(ctx, ids); err != nil {
			r.c.log.Warn("delete topics: resolving topic ids failed", "err", err)
			idErr = true
		}
	}

	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(reqs))
	names := make([]string, len(reqs))
	count := make(map[string]int)
	for i, t := range reqs {
		st := &resp.Topics[i]
		*st = kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = t.Topic, t.TopicID
		switch {
		case t.Topic != nil && t.TopicID != [16]byte{}:
			st.ErrorCode = int16(protocol.ErrInvalidRequest)
			st.ErrorMessage = nullable("give a topic's name or its id, not both")
		case t.Topic != nil:
			names[i] = *t.Topic
		case idErr:
			st.ErrorCode = int16(protocol.ErrUnknownServerError)
		default:
			n, ok := byID[t.TopicID]
			if !ok {
				st.ErrorCode = int16(protocol.ErrUnknownTopicID)
				continue
			}
			names[i] = n
			st.Topic = &names[i]
		}
		if names[i] != "" {
			count[names[i]]++
		}
	}

	var deletes []string
	slots := make(map[string]*kmsg.DeleteTopicsResponseTopic)
	for i := range reqs {
		n := names[i]
		if n == "" {
			continue
		}
		st := &resp.Topics[i]
		if count[n] > 1 {
			st.ErrorCode = int16(protocol.ErrInvalidRequest)
			st.ErrorMessage = nullable("the request names the topic more than once")
			continue
		}
		deletes = append(deletes, n)
		slots[n] = st
	}
	if len(deletes) == 0 {
		return resp, nil
	}

	var results []protocol.TopicResult
	r.safely(0, func(int) { results = r.c.s.host.DeleteTopics(ctx, deletes) }, func(int) { results = nil })
	for _, res := range results {
		st, ok := slots[res.Name]
		if !ok {
			continue
		}
		delete(slots, res.Name)
		st.ErrorCode, st.ErrorMessage = int16(res.Err), nullable(res.ErrMsg)
		if res.ID != [16]byte{} {
			st.TopicID = res.ID
		}
	}
	for _, st := range slots {
		st.ErrorCode = int16(protocol.ErrUnknownServerError)
	}
	return resp, nil
}
