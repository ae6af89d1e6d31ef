package kafka

import (
	"context"
	"net"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup: v0-9 (offered when the Host is a protocol.GroupHost).
//
// Passed to GroupHost.JoinGroup, which blocks for the join phase. The
// client host is the connection's remote address.
//
// Version notes: v1 rebalance timeout (v0: the session timeout); v2
// throttle; v3 nothing new; v4 a new member without a group instance id
// gets MEMBER_ID_REQUIRED and a member id to rejoin with (KIP-394); v5
// group instance id (static membership, KIP-345); v6 flexible; v7
// protocol type in the response; v8 reason; v9 SkipAssignment (always
// false here).

func init() { registerGroup(11, 0, 9, false, handleJoinGroup) }

func clientHost(r *request) string {
	if host, _, err := net.SplitHostPort(r.c.nc.RemoteAddr().String()); err == nil {
		return "/" + host
	}
	return ""
}

func clientID(r *request) string {
	if r.clientID == nil {
		return ""
	}
	return *r.clientID
}

func handleJoinGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	hreq := protocol.JoinGroupRequest{
		Version:          req.Version,
		Group:            req.Group,
		MemberID:         req.MemberID,
		InstanceID:       req.InstanceID,
		ProtocolType:     req.ProtocolType,
		SessionTimeout:   time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout: time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		ClientID:         clientID(r),
		ClientHost:       clientHost(r),
	}
	if req.Version < 1 {
		hreq.RebalanceTimeout = hreq.SessionTimeout
	}
	if req.Reason != nil {
		hreq.Reason = *req.Reason
	}
	for _, p := range req.Protocols {
		hreq.Protocols = append(hreq.Protocols, protocol.GroupProtocol{Name: p.Name, Metadata: p.Metadata})
	}
	res := r.c.s.groups.JoinGroup(ctx, hreq)
	resp.ErrorCode, resp.Generation, resp.MemberID = int16(res.Err), res.Generation, res.MemberID
	resp.LeaderID = res.Leader
	if res.Err == protocol.ErrNone {
		resp.Protocol = kmsg.StringPtr(res.Protocol)
		resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
	}
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
