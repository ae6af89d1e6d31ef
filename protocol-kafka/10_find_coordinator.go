package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-6 (offered when the Host is a protocol.GroupHost).
//
// Passed to GroupHost.FindCoordinator, which creates __consumer_offsets on
// first need and names the leader of the group's partition. Transaction
// keys (type 1) answer COORDINATOR_NOT_AVAILABLE; share-group keys (type 2,
// v6) are not coordinated either.
//
// Version notes: v1 CoordinatorType, throttle, error message; v2 nothing
// new on the wire; v3 flexible; v4 batched CoordinatorKeys (KIP-699) with
// per-key results; v5 and v6 change only error codes and key types.

func init() { registerGroup(10, 0, 6, false, handleFindCoordinator) }

func handleFindCoordinator(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	res := r.c.s.groups.FindCoordinator(ctx, req.CoordinatorType, keys)
	if req.Version < 4 {
		c := res[0]
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = int16(c.Err), c.Broker.ID, c.Broker.Host, c.Broker.Port
		if req.Version >= 1 {
			resp.ErrorMessage = nullable(c.ErrMsg)
		}
		return resp, nil
	}
	for _, c := range res {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key, rc.ErrorCode, rc.ErrorMessage = c.Key, int16(c.Err), nullable(c.ErrMsg)
		rc.NodeID, rc.Host, rc.Port = c.Broker.ID, c.Broker.Host, c.Broker.Port
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp, nil
}
