package kafka

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-5 (offered when the Host is a protocol.GroupHost).
//
// Each broker lists the groups it coordinates; clients ask every broker.
// Every group is a classic group.
//
// Version notes: v1 throttle; v2 nothing new; v3 flexible; v4 states
// filter and group state (KIP-518); v5 types filter and group type
// (KIP-848: "classic").

func init() { registerGroup(16, 0, 5, false, handleListGroups) }

func handleListGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, "classic") {
		return resp, nil
	}
	groups, code := r.c.s.groups.ListGroups(ctx, req.StatesFilter)
	resp.ErrorCode = int16(code)
	for _, g := range groups {
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.Group, g.ProtocolType, g.State, "classic"
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
