package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/protocol"
)

// AlterConfigs: v0-2 (offered when the Host is a protocol.AdminHost).
//
// Each resource's overrides become exactly the given set. v2 is flexible.

func init() { registerAdmin(33, 0, 2, true, handleAlterConfigs) }

func handleAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	hreq := make([]protocol.AlterConfigsResource, len(req.Resources))
	for i, rr := range req.Resources {
		hr := protocol.AlterConfigsResource{Type: int8(rr.ResourceType), Name: rr.ResourceName, Configs: map[string]*string{}}
		for _, c := range rr.Configs {
			hr.Configs[c.Name] = c.Value
		}
		hreq[i] = hr
	}
	var results []protocol.ConfigResult
	r.safely(0, func(int) { results = r.c.s.admin.AlterConfigs(ctx, hreq, req.ValidateOnly) }, func(int) { results = nil })
	resp.Resources = alterConfigsResources(req.Resources, results, func(rr kmsg.AlterConfigsRequestResource) (int8, string) {
		return int8(rr.ResourceType), rr.ResourceName
	})
	return resp, nil
}

// alterConfigsResources builds the per-resource answers shared by
// AlterConfigs and IncrementalAlterConfigs (their response resources have
// the same shape).
func alterConfigsResources[R any](req []R, results []protocol.ConfigResult, id func(R) (int8, string)) []kmsg.AlterConfigsResponseResource {
	out := make([]kmsg.AlterConfigsResponseResource, len(req))
	for i, rr := range req {
		sr := &out[i]
		*sr = kmsg.NewAlterConfigsResponseResource()
		typ, name := id(rr)
		sr.ResourceType, sr.ResourceName = kmsg.ConfigResourceType(typ), name
		if i >= len(results) {
			sr.ErrorCode = int16(protocol.ErrUnknownServerError)
			continue
		}
		sr.ErrorCode, sr.ErrorMessage = int16(results[i].Err), nullable(results[i].ErrMsg)
	}
	return out
}
