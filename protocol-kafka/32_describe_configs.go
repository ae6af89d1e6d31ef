package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v0-4.
//
// Resources go to Host.DescribeConfigs in one call, except topics with an
// illegal name (INVALID_TOPIC_EXCEPTION). A null key list asks for every
// key.
//
// Version notes: v1 config source (v0: IsDefault) and synonyms (when asked,
// the entry itself with its source: the Host reports no other levels); v3
// config type (UNKNOWN: the Host does not type configs) and documentation
// (none); v4 flexible.

func init() { register(32, 0, 4, false, handleDescribeConfigs) }

const configResourceTopic = 2

func handleDescribeConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)

	resp.Resources = make([]kmsg.DescribeConfigsResponseResource, len(req.Resources))
	var (
		hreq  []protocol.ConfigResource
		slots []*kmsg.DescribeConfigsResponseResource
	)
	for i, rr := range req.Resources {
		sr := &resp.Resources[i]
		*sr = kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if int8(rr.ResourceType) == configResourceTopic && !validTopicName(rr.ResourceName) {
			sr.ErrorCode = int16(protocol.ErrInvalidTopicException)
			sr.ErrorMessage = nullable("invalid topic name")
			continue
		}
		hreq = append(hreq, protocol.ConfigResource{Type: int8(rr.ResourceType), Name: rr.ResourceName, Keys: rr.ConfigNames})
		slots = append(slots, sr)
	}
	if len(hreq) == 0 {
		return resp, nil
	}

	var results []protocol.ConfigResult
	r.safely(0, func(int) { results = r.c.s.host.DescribeConfigs(ctx, hreq) }, func(int) { results = nil })
	for i, sr := range slots {
		if i >= len(results) {
			sr.ErrorCode = int16(protocol.ErrUnknownServerError)
			continue
		}
		res := &results[i]
		sr.ErrorCode, sr.ErrorMessage = int16(res.Err), nullable(res.ErrMsg)
		if res.Err != protocol.ErrNone {
			continue
		}
		sr.Configs = make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(res.Configs))
		for _, c := range res.Configs {
			sc := kmsg.NewDescribeConfigsResponseResourceConfig()
			sc.Name, sc.Value, sc.ReadOnly, sc.IsSensitive = c.Name, c.Value, c.ReadOnly, c.Sensitive
			if c.Sensitive {
				sc.Value = nil
			}
			sc.IsDefault = c.Default
			sc.Source = kmsg.ConfigSource(c.Source)
			if req.IncludeSynonyms && c.Source != protocol.ConfigSourceUnknown {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = c.Name, sc.Value, sc.Source
				sc.ConfigSynonyms = append(sc.ConfigSynonyms, syn)
			}
			sr.Configs = append(sr.Configs, sc)
		}
	}
	return resp, nil
}
