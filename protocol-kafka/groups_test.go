package kafka

import (
	"context"
	"testing"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupTestHost is a testHost that also coordinates groups (every call
// answers COORDINATOR_NOT_AVAILABLE: only registration is tested here; the
// integration tests drive the real coordinator).
type groupTestHost struct {
	*testHost
}

func (groupTestHost) FindCoordinator(_ context.Context, _ int8, keys []string) []protocol.Coordinator {
	out := make([]protocol.Coordinator, len(keys))
	for i, k := range keys {
		out[i] = protocol.Coordinator{Key: k, Err: protocol.ErrCoordinatorNotAvailable, Broker: protocol.Broker{ID: -1}}
	}
	return out
}
func (groupTestHost) JoinGroup(context.Context, protocol.JoinGroupRequest) protocol.JoinGroupResult {
	return protocol.JoinGroupResult{Err: protocol.ErrCoordinatorNotAvailable}
}
func (groupTestHost) SyncGroup(context.Context, protocol.SyncGroupRequest) protocol.SyncGroupResult {
	return protocol.SyncGroupResult{Err: protocol.ErrCoordinatorNotAvailable}
}
func (groupTestHost) Heartbeat(context.Context, protocol.HeartbeatRequest) protocol.ErrorCode {
	return protocol.ErrCoordinatorNotAvailable
}
func (groupTestHost) LeaveGroup(context.Context, protocol.LeaveGroupRequest) protocol.LeaveGroupResult {
	return protocol.LeaveGroupResult{Err: protocol.ErrCoordinatorNotAvailable}
}
func (groupTestHost) OffsetCommit(_ context.Context, req protocol.OffsetCommitRequest) protocol.OffsetCommitResult {
	return protocol.OffsetCommitResult{Partitions: make([]protocol.ErrorCode, len(req.Partitions))}
}
func (groupTestHost) OffsetFetch(context.Context, protocol.OffsetFetchRequest) protocol.OffsetFetchResult {
	return protocol.OffsetFetchResult{}
}
func (groupTestHost) DescribeGroups(context.Context, []string) []protocol.GroupDescription {
	return nil
}
func (groupTestHost) ListGroups(context.Context, []string) ([]protocol.GroupListing, protocol.ErrorCode) {
	return nil, protocol.ErrNone
}
func (groupTestHost) DeleteGroups(context.Context, []string) []protocol.GroupResult { return nil }
func (groupTestHost) OffsetDelete(context.Context, protocol.OffsetDeleteRequest) protocol.OffsetDeleteResult {
	return protocol.OffsetDeleteResult{}
}

// TestGroupAPIsNeedGroupHost: the group API keys are advertised and served
// only when the Host implements protocol.GroupHost.
func TestGroupAPIsNeedGroupHost(t *testing.T) {
	groupKeys := []int16{8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47}
	for _, tc := range []struct {
		name string
		host protocol.Host
		want bool
	}{
		{"plain", newTestHost(), false},
		{"groups", groupTestHost{newTestHost()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen = "127.0.0.1:0"
			srv, err := NewFactory().Create(context.Background(), component.Settings{}, cfg, tc.host)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
			s := srv.(*Server)
			c := dial(t, s)
			av := kmsg.NewPtrApiVersionsRequest()
			av.ClientSoftwareName, av.ClientSoftwareVersion = "test", "1"
			send(t, c, frame(av, 3, 1))
			resp := recv[*kmsg.ApiVersionsResponse](t, c, av, 1)
			adv := map[int16]bool{}
			for _, k := range resp.ApiKeys {
				adv[k.ApiKey] = true
			}
			for _, k := range groupKeys {
				if adv[k] != tc.want {
					t.Errorf("key %d (%s) advertised = %v, want %v", k, kmsg.NameForKey(k), adv[k], tc.want)
				}
			}
			// A group request reaches the handler only with a GroupHost;
			// without one it is an unknown key and closes the connection.
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.CoordinatorKeys = []string{"g"}
			send(t, c, frame(fc, 4, 2))
			if !tc.want {
				expectClosed(t, c)
				return
			}
			fr := recv[*kmsg.FindCoordinatorResponse](t, c, fc, 2)
			if len(fr.Coordinators) != 1 || fr.Coordinators[0].ErrorCode != int16(protocol.ErrCoordinatorNotAvailable) {
				t.Fatalf("FindCoordinator: %+v", fr.Coordinators)
			}
		})
	}
}
