package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup: v0-5 (offered when the Host is a protocol.GroupHost).
//
// Passed to GroupHost.SyncGroup: the leader's call carries the
// assignments, the others wait for it.
//
// Version notes: v1 throttle; v2 nothing new; v3 group instance id; v4
// flexible; v5 protocol type and name in request and response.

func init() { registerGroup(14, 0, 5, false, handleSyncGroup) }

func handleSyncGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	hreq := protocol.SyncGroupRequest{
		Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: req.InstanceID,
		ProtocolType: req.ProtocolType, Protocol: req.Protocol,
	}
	for _, a := range req.GroupAssignment {
		hreq.Assignments = append(hreq.Assignments, protocol.SyncGroupAssignment{MemberID: a.MemberID, Assignment: a.MemberAssignment})
	}
	res := r.c.s.groups.SyncGroup(ctx, hreq)
	resp.ErrorCode = int16(res.Err)
	if res.Err == protocol.ErrNone {
		resp.MemberAssignment = res.Assignment
		resp.ProtocolType, resp.Protocol = kmsg.StringPtr(res.ProtocolType), kmsg.StringPtr(res.Protocol)
	}
	return resp, nil
}
