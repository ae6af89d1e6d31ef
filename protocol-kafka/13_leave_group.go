package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup: v0-5 (offered when the Host is a protocol.GroupHost).
//
// Ordered, so that a member's last OffsetCommit on the same connection
// takes effect before it leaves.
//
// Version notes: v1 throttle; v2 nothing new; v3 batched members with
// group instance ids and per-member errors (KIP-345); v4 flexible; v5
// reason.

func init() { registerGroup(13, 0, 5, true, handleLeaveGroup) }

func handleLeaveGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	hreq := protocol.LeaveGroupRequest{Group: req.Group}
	if req.Version < 3 {
		hreq.Members = []protocol.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			hreq.Members = append(hreq.Members, protocol.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	res := r.c.s.groups.LeaveGroup(ctx, hreq)
	resp.ErrorCode = int16(res.Err)
	if res.Err != protocol.ErrNone {
		return resp, nil
	}
	if req.Version < 3 {
		if len(res.Members) == 1 {
			resp.ErrorCode = int16(res.Members[0])
		}
		return resp, nil
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		if i < len(res.Members) {
			rm.ErrorCode = int16(res.Members[i])
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
