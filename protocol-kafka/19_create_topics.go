package kafka

import (
	"context"
	"fmt"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics: v0-7.
//
// Checked here, as Kafka does, before the Host sees a topic: a name given
// twice (INVALID_REQUEST for each), an illegal name
// (INVALID_TOPIC_EXCEPTION), an explicit assignment together with a
// partition count or replication factor (INVALID_REQUEST), a count or
// factor below 1 other than -1 (INVALID_PARTITIONS,
// INVALID_REPLICATION_FACTOR; -1, the broker default, from v4), and a null
// config value (INVALID_CONFIG). The rest go to Host.CreateTopics in one
// call.
//
// Version notes: v1 ValidateOnly, ErrorMessage; v2 throttle; v4 -1
// defaults; v5 flexible, NumPartitions, ReplicationFactor and the topic's
// configs in the response; v7 topic id.

func init() { register(19, 0, 7, true, handleCreateTopics) }

func handleCreateTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)

	count := make(map[string]int, len(req.Topics))
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	var creates []protocol.CreateTopic
	slot := make(map[string]*kmsg.CreateTopicsResponseTopic)
	for i := range req.Topics {
		t := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewCreateTopicsResponseTopic()
		st.Topic = t.Topic
		if code, msg := checkCreateTopic(t, req.Version, count[t.Topic]); code != protocol.ErrNone {
			st.ErrorCode, st.ErrorMessage = int16(code), nullable(msg)
			continue
		}
		ct := protocol.CreateTopic{
			Name:              t.Topic,
			NumPartitions:     t.NumPartitions,
			ReplicationFactor: t.ReplicationFactor,
		}
		if len(t.ReplicaAssignment) > 0 {
			ct.Assignment = make(map[int32][]int32, len(t.ReplicaAssignment))
			for _, a := range t.ReplicaAssignment {
				ct.Assignment[a.Partition] = a.Replicas
			}
		}
		if len(t.Configs) > 0 {
			ct.Configs = make(map[string]string, len(t.Configs))
			for _, c := range t.Configs {
				ct.Configs[c.Name] = *c.Value
			}
		}
		creates = append(creates, ct)
		slot[t.Topic] = st
	}
	if len(creates) == 0 {
		return resp, nil
	}

	var results []protocol.TopicResult
	r.safely(0, func(int) { results = r.c.s.host.CreateTopics(ctx, creates, req.ValidateOnly) }, func(int) { results = nil })
	for _, res := range results {
		st, ok := slot[res.Name]
		if !ok {
			continue
		}
		delete(slot, res.Name)
		st.ErrorCode, st.ErrorMessage = int16(res.Err), nullable(res.ErrMsg)
		if res.Err != protocol.ErrNone {
			continue
		}
		st.TopicID = res.ID
		st.NumPartitions = res.NumPartitions
		st.ReplicationFactor = res.ReplicationFactor
		for _, c := range res.Configs {
			sc := kmsg.NewCreateTopicsResponseTopicConfig()
			sc.Name, sc.Value, sc.ReadOnly, sc.Source, sc.IsSensitive = c.Name, c.Value, c.ReadOnly, c.Source, c.Sensitive
			st.Configs = append(st.Configs, sc)
		}
	}
	for _, st := range slot { // the Host did not answer these
		st.ErrorCode = int16(protocol.ErrUnknownServerError)
	}
	return resp, nil
}

func checkCreateTopic(t *kmsg.CreateTopicsRequestTopic, version int16, count int) (protocol.ErrorCode, string) {
	switch {
	case count > 1:
		return protocol.ErrInvalidRequest, "the request names the topic more than once"
	case !validTopicName(t.Topic):
		return protocol.ErrInvalidTopicException, "topic names are 1 to 249 of [a-zA-Z0-9._-], not '.' or '..'"
	case len(t.ReplicaAssignment) > 0 && (t.NumPartitions != -1 || t.ReplicationFactor != -1):
		return protocol.ErrInvalidRequest, "both numPartitions or replicationFactor and replicasAssignments were set"
	case len(t.ReplicaAssignment) == 0 && (t.NumPartitions == 0 || t.NumPartitions < -1 || t.NumPartitions == -1 && version < 4):
		return protocol.ErrInvalidPartitions, "number of partitions must be larger than 0, or -1 to use the default"
	case len(t.ReplicaAssignment) == 0 && (t.ReplicationFactor == 0 || t.ReplicationFactor < -1 || t.ReplicationFactor == -1 && version < 4):
		return protocol.ErrInvalidReplicationFactor, "replication factor must be larger than 0, or -1 to use the default"
	}
	for _, c := range t.Configs {
		if c.Value == nil {
			return protocol.ErrInvalidConfig, fmt.Sprintf("null value not supported for topic config %q", c.Name)
		}
	}
	return protocol.ErrNone, ""
}
