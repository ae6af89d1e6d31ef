package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: v0-4 (offered when the Host is a protocol.GroupHost).
//
// Version notes: v1 throttle; v2 nothing new; v3 group instance id; v4
// flexible.

func init() { registerGroup(12, 0, 4, false, handleHeartbeat) }

func handleHeartbeat(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	code := r.c.s.groups.Heartbeat(ctx, protocol.HeartbeatRequest{
		Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: req.InstanceID,
	})
	resp.ErrorCode = int16(code)
	return resp, nil
}
