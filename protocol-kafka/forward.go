package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/broker"
	"github.com/chronik-go/chronik/core/protocol"
)

var _ broker.Forwarder = (*Server)(nil)

// forwardVersion is the CreateTopics version used between brokers: the
// newest non-flexible one, so the request header stays the classic one.
const forwardVersion = 4

// CreateTopics implements broker.Forwarder: it sends a CreateTopics request
// to the broker at addr (the controller) over the Kafka protocol and returns
// its per-topic answers, in request order.
func (s *Server) CreateTopics(ctx context.Context, addr string, topics []protocol.CreateTopic) ([]protocol.TopicResult, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = forwardVersion
	req.TimeoutMillis = 10000
	for _, ct := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = ct.Name, ct.NumPartitions, ct.ReplicationFactor
		for p, reps := range ct.Assignment {
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition, ra.Replicas = p, reps
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		}
		for k, v := range ct.Configs {
			rc := kmsg.NewCreateTopicsRequestTopicConfig()
			rc.Name, rc.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, rc)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := kmsg.NewPtrCreateTopicsResponse()
	if err := roundTrip(ctx, addr, req, resp); err != nil {
		return nil, fmt.Errorf("kafka: forward CreateTopics to %s: %w", addr, err)
	}
	byName := make(map[string]*kmsg.CreateTopicsResponseTopic, len(resp.Topics))
	for i := range resp.Topics {
		byName[resp.Topics[i].Topic] = &resp.Topics[i]
	}
	out := make([]protocol.TopicResult, len(topics))
	for i, ct := range topics {
		out[i].Name = ct.Name
		rt := byName[ct.Name]
		if rt == nil {
			out[i].Err = protocol.ErrUnknownServerError
			continue
		}
		out[i].Err = protocol.ErrorCode(rt.ErrorCode)
		if rt.ErrorMessage != nil {
			out[i].ErrMsg = *rt.ErrorMessage
		}
		out[i].NumPartitions, out[i].ReplicationFactor = ct.NumPartitions, ct.ReplicationFactor
	}
	return out, nil
}

// AlterConfigs implements broker.Forwarder: it sends an AlterConfigs
// request (v1, non-flexible) to the controller at addr.
func (s *Server) AlterConfigs(ctx context.Context, addr string, res []protocol.AlterConfigsResource, validateOnly bool) ([]protocol.ConfigResult, error) {
	req := kmsg.NewPtrAlterConfigsRequest()
	req.Version, req.ValidateOnly = 1, validateOnly
	for _, r := range res {
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceType(r.Type), r.Name
		for k, v := range r.Configs {
			c := kmsg.NewAlterConfigsRequestResourceConfig()
			c.Name, c.Value = k, v
			rr.Configs = append(rr.Configs, c)
		}
		req.Resources = append(req.Resources, rr)
	}
	resp := kmsg.NewPtrAlterConfigsResponse()
	if err := roundTrip(ctx, addr, req, resp); err != nil {
		return nil, fmt.Errorf("kafka: forward AlterConfigs to %s: %w", addr, err)
	}
	return configResults(resp.Resources, len(res), func(r kmsg.AlterConfigsResponseResource) protocol.ConfigResult {
		return protocol.ConfigResult{Type: int8(r.ResourceType), Name: r.ResourceName, Err: protocol.ErrorCode(r.ErrorCode), ErrMsg: deref(r.ErrorMessage)}
	})
}

// IncrementalAlterConfigs implements broker.Forwarder: it sends an
// IncrementalAlterConfigs request (v0, non-flexible) to the controller.
func (s *Server) IncrementalAlterConfigs(ctx context.Context, addr string, res []protocol.IncrementalAlterConfigsResource, validateOnly bool) ([]protocol.ConfigResult, error) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version, req.ValidateOnly = 0, validateOnly
	for _, r := range res {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceType(r.Type), r.Name
		for _, op := range r.Ops {
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Op, c.Value = op.Name, kmsg.IncrementalAlterConfigOp(op.Op), op.Value
			rr.Configs = append(rr.Configs, c)
		}
		req.Resources = append(req.Resources, rr)
	}
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	if err := roundTrip(ctx, addr, req, resp); err != nil {
		return nil, fmt.Errorf("kafka: forward IncrementalAlterConfigs to %s: %w", addr, err)
	}
	return configResults(resp.Resources, len(res), func(r kmsg.IncrementalAlterConfigsResponseResource) protocol.ConfigResult {
		return protocol.ConfigResult{Type: int8(r.ResourceType), Name: r.ResourceName, Err: protocol.ErrorCode(r.ErrorCode), ErrMsg: deref(r.ErrorMessage)}
	})
}

// DescribeConfigs implements broker.Forwarder: it sends a DescribeConfigs
// request (v1, non-flexible, with config sources) to the controller.
func (s *Server) DescribeConfigs(ctx context.Context, addr string, res []protocol.ConfigResource) ([]protocol.ConfigResult, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 1
	for _, r := range res {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceType(r.Type), r.Name, r.Keys
		req.Resources = append(req.Resources, rr)
	}
	resp := kmsg.NewPtrDescribeConfigsResponse()
	if err := roundTrip(ctx, addr, req, resp); err != nil {
		return nil, fmt.Errorf("kafka: forward DescribeConfigs to %s: %w", addr, err)
	}
	return configResults(resp.Resources, len(res), func(r kmsg.DescribeConfigsResponseResource) protocol.ConfigResult {
		cr := protocol.ConfigResult{Type: int8(r.ResourceType), Name: r.ResourceName, Err: protocol.ErrorCode(r.ErrorCode), ErrMsg: deref(r.ErrorMessage)}
		for _, c := range r.Configs {
			cr.Configs = append(cr.Configs, protocol.ConfigEntry{
				Name: c.Name, Value: c.Value, ReadOnly: c.ReadOnly, Sensitive: c.IsSensitive,
				Source: int8(c.Source), Default: c.Source == kmsg.ConfigSourceDefaultConfig,
			})
		}
		return cr
	})
}

func configResults[R any](rs []R, n int, conv func(R) protocol.ConfigResult) ([]protocol.ConfigResult, error) {
	if len(rs) != n {
		return nil, fmt.Errorf("kafka: %d answers for %d resources", len(rs), n)
	}
	out := make([]protocol.ConfigResult, n)
	for i, r := range rs {
		out[i] = conv(r)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// roundTrip sends one request on a fresh connection and reads its response.
func roundTrip(ctx context.Context, addr string, req kmsg.Request, resp kmsg.Response) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	const corr = 1
	// Classic request header v1: key, version, correlation id, client id.
	buf := make([]byte, 4, 64)
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, corr)
	const clientID = "chronik-forward"
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(clientID)))
	buf = append(buf, clientID...)
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := conn.Write(buf); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return fmt.Errorf("response of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	if got := binary.BigEndian.Uint32(body); got != corr {
		return errors.New("response correlation id mismatch")
	}
	resp.SetVersion(req.GetVersion())
	return resp.ReadFrom(body[4:])
}
