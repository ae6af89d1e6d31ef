package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster: v0-2.
//
// Answered from Host.Cluster. Only broker endpoints are served: asking for
// controller endpoints (EndpointType 2, v1+) answers
// UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker does.
//
// Version notes: v1 EndpointType; v2 IncludeFencedBrokers (the Host lists
// live brokers only, so none is fenced).

func init() { register(60, 0, 2, false, handleDescribeCluster) }

const (
	endpointTypeBrokers         = 1
	errUnsupportedEndpointType  = 115
	authorizedOperationsOmitted = -2147483648
)

func handleDescribeCluster(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointTypeBrokers
	if req.Version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.EndpointType = req.EndpointType
		resp.ErrorCode = errUnsupportedEndpointType
		resp.ErrorMessage = nullable("only broker endpoints are served")
		return resp, nil
	}
	cl := r.c.s.host.Cluster(ctx)
	resp.ClusterID = cl.ID
	resp.ControllerID = cl.Controller
	resp.ClusterAuthorizedOperations = authorizedOperationsOmitted
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOps
	}
	for _, b := range cl.Brokers {
		sb := kmsg.NewDescribeClusterResponseBroker()
		sb.NodeID, sb.Host, sb.Port, sb.Rack = b.ID, b.Host, b.Port, nullable(b.Rack)
		resp.Brokers = append(resp.Brokers, sb)
	}
	return resp, nil
}
