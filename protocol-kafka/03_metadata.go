package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-12.
//
// Brokers, cluster id and controller come from Host.Cluster, topics from
// Host.Metadata: all of them when the request names none (v0: an empty
// list; v1+: a null one), else the named ones in request order. Illegal
// names answer INVALID_TOPIC_EXCEPTION without reaching the Host; names the
// Host does not return answer UNKNOWN_TOPIC_OR_PARTITION.
//
// Version notes: v1 controller, rack, internal flag, null for all topics;
// v2 cluster id; v4 AllowAutoTopicCreation (v0-3 always allow it, as Kafka
// did); v5 offline replicas (none: a replica outside the ISR is not
// reported offline); v7 leader epoch; v8 authorized operations (no ACLs:
// everything is allowed); v9 flexible; v10 topic ids, and topics asked by
// id (null name); v12 nullable topic name in the response.

func init() { register(3, 0, 12, false, handleMetadata) }

// Kafka ACL operation bits (AclOperation codes) reported as authorized:
// without ACLs every operation is.
const (
	topicOps   = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11 // read..describe, describe/alter configs
	clusterOps = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12 | 1<<13 | 1<<14
)

func handleMetadata(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host := r.c.s.host

	cl := host.Cluster(ctx)
	for _, b := range cl.Brokers {
		sb := kmsg.NewMetadataResponseBroker()
		sb.NodeID, sb.Host, sb.Port, sb.Rack = b.ID, b.Host, b.Port, nullable(b.Rack)
		resp.Brokers = append(resp.Brokers, sb)
	}
	resp.ClusterID = nullable(cl.ID)
	resp.ControllerID = cl.Controller
	if req.Version >= 8 && req.Version <= 10 && req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOps
	}
	autoCreate := req.Version < 4 || req.AllowAutoTopicCreation
	includeOps := req.Version >= 8 && req.IncludeTopicAuthorizedOperations

	all := req.Topics == nil || (req.Version < 1 && len(req.Topics) == 0)
	if all {
		md, err := host.Metadata(ctx, nil, false)
		if err != nil {
			return nil, err
		}
		for i := range md {
			resp.Topics = append(resp.Topics, metadataTopic(&md[i], includeOps))
		}
		return resp, nil
	}

	// Resolve topics asked by id (v10+, null name).
	var ids [][16]byte
	for _, t := range req.Topics {
		if t.Topic == nil {
			ids = append(ids, t.TopicID)
		}
	}
	var byID map[[16]byte]string
	idErr := false
	if len(ids) > 0 {
		var err error
		if byID, err = r.c.s.ids.names(ctx, ids); err != nil {
			r.c.log.Warn("metadata: resolving topic ids failed", "err", err)
			idErr = true
		}
	}

	type answer struct {
		name string
		id   [16]byte
		code protocol.ErrorCode // set when the Host is not asked
	}
	answers := make([]answer, len(req.Topics))
	var names []string
	seen := make(map[string]bool)
	for i, t := range req.Topics {
		a := &answers[i]
		switch {
		case t.Topic == nil && idErr:
			a.id, a.code = t.TopicID, protocol.ErrUnknownServerError
			continue
		case t.Topic == nil:
			n, ok := byID[t.TopicID]
			if !ok {
				a.id, a.code = t.TopicID, protocol.ErrUnknownTopicID
				continue
			}
			a.name = n
		default:
			a.name = *t.Topic
			if !validTopicName(a.name) {
				a.code = protocol.ErrInvalidTopicException
				continue
			}
		}
		if !seen[a.name] {
			seen[a.name] = true
			names = append(names, a.name)
		}
	}

	byName := make(map[string]*protocol.TopicMetadata, len(names))
	if len(names) > 0 {
		md, err := host.Metadata(ctx, names, autoCreate)
		if err != nil {
			for i := range answers {
				if answers[i].code == protocol.ErrNone {
					answers[i].code = protocol.ErrUnknownServerError
				}
			}
		}
		for i := range md {
			byName[md[i].Name] = &md[i]
		}
	}

	for i, t := range req.Topics {
		a := &answers[i]
		if m, ok := byName[a.name]; ok && a.code == protocol.ErrNone {
			resp.Topics = append(resp.Topics, metadataTopic(m, includeOps))
			continue
		}
		st := kmsg.NewMetadataResponseTopic()
		st.Topic = t.Topic
		if st.Topic == nil && a.name != "" {
			st.Topic = &a.name
		}
		if st.Topic == nil && req.Version < 12 {
			empty := ""
			st.Topic = &empty
		}
		st.TopicID = a.id
		st.ErrorCode = int16(a.code)
		if a.code == protocol.ErrNone {
			st.ErrorCode = int16(protocol.ErrUnknownTopicOrPartition)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func metadataTopic(m *protocol.TopicMetadata, includeOps bool) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := m.Name
	st.Topic = &name
	st.TopicID = m.ID
	st.ErrorCode = int16(m.Err)
	st.IsInternal = m.Internal
	if includeOps {
		st.AuthorizedOperations = topicOps
	}
	st.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(m.Partitions))
	for i, p := range m.Partitions {
		sp := &st.Partitions[i]
		*sp = kmsg.NewMetadataResponseTopicPartition()
		sp.ErrorCode = int16(p.Err)
		sp.Partition = p.Partition
		sp.Leader = p.Leader
		sp.LeaderEpoch = p.LeaderEpoch
		sp.Replicas = nonNil(p.Replicas)
		sp.ISR = nonNil(p.ISR)
		sp.OfflineReplicas = []int32{}
	}
	return st
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}
