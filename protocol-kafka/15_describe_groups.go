package kafka

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-5 (offered when the Host is a protocol.GroupHost).
//
// An unknown group is described with state Dead and no error. v6
// (GROUP_ID_NOT_FOUND for unknown groups, error messages) is not offered.
//
// Version notes: v1 throttle; v2 nothing new; v3 authorized operations
// (requested: reported as unknown, MinInt32); v4 group instance ids; v5
// flexible.

func init() { registerGroup(15, 0, 5, false, handleDescribeGroups) }

func handleDescribeGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, d := range r.c.s.groups.DescribeGroups(ctx, req.Groups) {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.ErrorCode, rg.State, rg.ProtocolType, rg.Protocol = d.Group, int16(d.Err), d.State, d.ProtocolType, d.Protocol
		rg.AuthorizedOperations = math.MinInt32
		for _, m := range d.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
			rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
