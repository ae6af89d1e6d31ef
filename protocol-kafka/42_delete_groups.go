package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-2 (offered when the Host is a protocol.GroupHost).
//
// Only groups without members are deleted (NON_EMPTY_GROUP otherwise);
// an unknown group is GROUP_ID_NOT_FOUND. Ordered.
//
// Version notes: v1 nothing new; v2 flexible. v3 (error messages) is not
// offered.

func init() { registerGroup(42, 0, 2, true, handleDeleteGroups) }

func handleDeleteGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, g := range r.c.s.groups.DeleteGroups(ctx, req.Groups) {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g.Group, int16(g.Err)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
