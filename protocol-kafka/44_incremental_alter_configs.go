package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/protocol"
)

// IncrementalAlterConfigs: v0-1 (offered when the Host is a
// protocol.AdminHost). v1 is flexible.

func init() { registerAdmin(44, 0, 1, true, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	hreq := make([]protocol.IncrementalAlterConfigsResource, len(req.Resources))
	for i, rr := range req.Resources {
		hr := protocol.IncrementalAlterConfigsResource{Type: int8(rr.ResourceType), Name: rr.ResourceName}
		for _, c := range rr.Configs {
			hr.Ops = append(hr.Ops, protocol.ConfigOp{Name: c.Name, Op: int8(c.Op), Value: c.Value})
		}
		hreq[i] = hr
	}
	var results []protocol.ConfigResult
	r.safely(0, func(int) { results = r.c.s.admin.IncrementalAlterConfigs(ctx, hreq, req.ValidateOnly) }, func(int) { results = nil })
	rs := alterConfigsResources(req.Resources, results, func(rr kmsg.IncrementalAlterConfigsRequestResource) (int8, string) {
		return int8(rr.ResourceType), rr.ResourceName
	})
	resp.Resources = make([]kmsg.IncrementalAlterConfigsResponseResource, len(rs))
	for i, sr := range rs {
		resp.Resources[i] = kmsg.IncrementalAlterConfigsResponseResource{
			ErrorCode: sr.ErrorCode, ErrorMessage: sr.ErrorMessage, ResourceType: sr.ResourceType, ResourceName: sr.ResourceName,
		}
	}
	return resp, nil
}
