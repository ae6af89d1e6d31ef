package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
)

// groupHarness drives a group state machine with a clock the test moves.
type groupHarness struct {
	t   *testing.T
	g   *group
	now time.Time
	ids int
}

func newGroupHarness(t *testing.T, delay time.Duration) *groupHarness {
	now := time.Unix(1_700_000_000, 0)
	return &groupHarness{t: t, g: newGroup("g", now, delay), now: now}
}

func (h *groupHarness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.g.tick(h.now)
}

func (h *groupHarness) newID() string {
	h.ids++
	return fmt.Sprintf("m%d", h.ids)
}

func joinReq(member string, instance *string) protocol.JoinGroupRequest {
	return protocol.JoinGroupRequest{
		Version: 9, Group: "g", MemberID: member, InstanceID: instance, ProtocolType: "consumer",
		Protocols:      []protocol.GroupProtocol{{Name: "cooperative-sticky", Metadata: []byte("sub-" + member)}, {Name: "range"}},
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second,
	}
}

func (h *groupHarness) join(member string, instance *string) <-chan protocol.JoinGroupResult {
	return h.g.join(h.now, joinReq(member, instance), h.newID)
}

// joinNew goes through MEMBER_ID_REQUIRED and returns the member id and
// the pending second join.
func (h *groupHarness) joinNew() (string, <-chan protocol.JoinGroupResult) {
	h.t.Helper()
	r := <-h.join("", nil)
	if r.Err != protocol.ErrMemberIDRequired || r.MemberID == "" {
		h.t.Fatalf("first join: %+v, want MEMBER_ID_REQUIRED with an id", r)
	}
	return r.MemberID, h.join(r.MemberID, nil)
}

func ready[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	default:
		t.Fatal("no answer yet")
		panic("unreachable")
	}
}

func pending[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("answered early: %+v", v)
	default:
	}
}

// syncAll syncs every member (the leader with a given assignment) and
// completes the metadata write.
func (h *groupHarness) syncAll(gen int32, leader string, members ...string) {
	h.t.Helper()
	var chs []<-chan protocol.SyncGroupResult
	var asg []protocol.SyncGroupAssignment
	for _, m := range members {
		asg = append(asg, protocol.SyncGroupAssignment{MemberID: m, Assignment: []byte("a-" + m)})
	}
	for _, m := range members {
		req := protocol.SyncGroupRequest{Group: "g", Generation: gen, MemberID: m}
		if m == leader {
			req.Assignments = asg
		}
		chs = append(chs, h.g.sync(h.now, req))
	}
	for _, ch := range chs {
		pending(h.t, ch) // held until the metadata record is written
	}
	meta := h.g.takePersist()
	if meta == nil || meta.generation != gen || len(meta.members) != len(members) {
		h.t.Fatalf("metadata to persist: %+v", meta)
	}
	h.g.persisted(h.now, gen, protocol.ErrNone)
	for i, ch := range chs {
		r := ready(h.t, ch)
		if r.Err != protocol.ErrNone || string(r.Assignment) != "a-"+members[i] {
			h.t.Fatalf("sync of %s: %+v", members[i], r)
		}
	}
	if h.g.state != groupStable {
		h.t.Fatalf("state %v after sync, want Stable", h.g.state)
	}
}

func TestGroupJoinSyncHeartbeatLeave(t *testing.T) {
	h := newGroupHarness(t, 0)
	m1, j1 := h.joinNew()
	r1 := ready(t, j1)
	if r1.Err != protocol.ErrNone || r1.Generation != 1 || r1.Leader != m1 || len(r1.Members) != 1 || r1.Protocol != "cooperative-sticky" {
		t.Fatalf("first member's join: %+v", r1)
	}
	h.syncAll(1, m1, m1)

	// A second member starts a rebalance; the first learns it from its
	// heartbeat and rejoins; then both are in generation 2.
	m2, j2 := h.joinNew()
	pending(t, j2)
	if code := h.g.heartbeat(h.now, protocol.HeartbeatRequest{Group: "g", Generation: 1, MemberID: m1}); code != protocol.ErrRebalanceInProgress {
		t.Fatalf("heartbeat during the join phase: %v", code)
	}
	// A commit of the old generation is still accepted while preparing
	// (cooperative members commit before revoking).
	if code := h.g.canCommit(protocol.OffsetCommitRequest{Generation: 1, MemberID: m1}); code != protocol.ErrNone {
		t.Fatalf("commit while preparing: %v", code)
	}
	j1 = h.join(m1, nil)
	r1, r2 := ready(t, j1), ready(t, j2)
	if r1.Generation != 2 || r2.Generation != 2 || r1.Leader != m1 || len(r1.Members) != 2 || len(r2.Members) != 0 {
		t.Fatalf("generation 2: leader %+v, follower %+v", r1, r2)
	}
	if code := h.g.canCommit(protocol.OffsetCommitRequest{Generation: 2, MemberID: m2}); code != protocol.ErrRebalanceInProgress {
		t.Fatalf("commit while completing: %v", code)
	}
	h.syncAll(2, m1, m1, m2)

	for _, tc := range []struct {
		req  protocol.HeartbeatRequest
		want protocol.ErrorCode
	}{
		{protocol.HeartbeatRequest{Generation: 2, MemberID: m2}, protocol.ErrNone},
		{protocol.HeartbeatRequest{Generation: 1, MemberID: m2}, protocol.ErrIllegalGeneration},
		{protocol.HeartbeatRequest{Generation: 2, MemberID: "nobody"}, protocol.ErrUnknownMemberID},
	} {
		if code := h.g.heartbeat(h.now, tc.req); code != tc.want {
			t.Errorf("heartbeat %+v: %v, want %v", tc.req, code, tc.want)
		}
	}
	for _, tc := range []struct {
		req  protocol.OffsetCommitRequest
		want protocol.ErrorCode
	}{
		{protocol.OffsetCommitRequest{Generation: 2, MemberID: m2}, protocol.ErrNone},
		{protocol.OffsetCommitRequest{Generation: 1, MemberID: m2}, protocol.ErrIllegalGeneration},
		{protocol.OffsetCommitRequest{Generation: 2, MemberID: "x"}, protocol.ErrUnknownMemberID},
		{protocol.OffsetCommitRequest{Generation: -1}, protocol.ErrUnknownMemberID}, // simple commit into a group with members
	} {
		if code := h.g.canCommit(tc.req); code != tc.want {
			t.Errorf("commit %+v: %v, want %v", tc.req, code, tc.want)
		}
	}

	// The leader leaves: m2 rebalances alone and becomes leader.
	if codes := h.g.leave(h.now, []protocol.LeaveMember{{MemberID: m1}, {MemberID: "ghost"}}); codes[0] != protocol.ErrNone || codes[1] != protocol.ErrUnknownMemberID {
		t.Fatalf("leave: %v", codes)
	}
	j2 = h.join(m2, nil)
	r2 = ready(t, j2)
	if r2.Generation != 3 || r2.Leader != m2 {
		t.Fatalf("after the leader left: %+v", r2)
	}
	h.syncAll(3, m2, m2)
	h.g.leave(h.now, []protocol.LeaveMember{{MemberID: m2}})
	if h.g.state != groupEmpty || h.g.generation != 4 {
		t.Fatalf("after everyone left: %v generation %d", h.g.state, h.g.generation)
	}
	if m := h.g.takePersist(); m == nil || len(m.members) != 0 || m.generation != 4 {
		t.Fatalf("an empty group's metadata: %+v", m)
	}
	if code := h.g.canCommit(protocol.OffsetCommitRequest{Generation: -1}); code != protocol.ErrNone {
		t.Fatalf("simple commit into an empty group: %v", code)
	}
}

func TestGroupSessionExpiry(t *testing.T) {
	h := newGroupHarness(t, 0)
	m1, j1 := h.joinNew()
	ready(t, j1)
	h.syncAll(1, m1, m1)
	m2, j2 := h.joinNew()
	j1 = h.join(m1, nil)
	ready(t, j1)
	ready(t, j2)
	h.syncAll(2, m1, m1, m2)

	// m1 heartbeats, m2 goes silent past its 10 s session.
	for i := 0; i < 4; i++ {
		h.advance(3 * time.Second)
		if i < 3 {
			if code := h.g.heartbeat(h.now, protocol.HeartbeatRequest{Generation: 2, MemberID: m1}); code != protocol.ErrNone {
				t.Fatalf("heartbeat %d: %v", i, code)
			}
		}
	}
	if h.g.members[m2] != nil {
		t.Fatal("a silent member outlived its session")
	}
	if h.g.state != groupPreparingRebalance {
		t.Fatalf("state %v after an expiry, want PreparingRebalance", h.g.state)
	}
	// The smaller membership is persisted at once, so that a coordinator
	// taking over does not wait for the expired member again.
	if m := h.g.takePersist(); m == nil || len(m.members) != 1 || m.members[0].memberID != m1 || m.generation != 2 {
		t.Fatalf("metadata after an expiry: %+v", m)
	}
	if code := h.g.heartbeat(h.now, protocol.HeartbeatRequest{Generation: 2, MemberID: m1}); code != protocol.ErrRebalanceInProgress {
		t.Fatalf("heartbeat after an expiry: %v", code)
	}
	r := ready(t, h.join(m1, nil))
	if r.Generation != 3 || len(r.Members) != 1 {
		t.Fatalf("rejoin after an expiry: %+v", r)
	}
}

func TestGroupRebalanceTimeoutRemovesLaggards(t *testing.T) {
	h := newGroupHarness(t, 0)
	m1, j1 := h.joinNew()
	ready(t, j1)
	h.syncAll(1, m1, m1)
	m2, j2 := h.joinNew()
	// m1 never rejoins (but keeps heartbeating): at the rebalance deadline
	// (its 30 s rebalance timeout) it is removed and m2 goes on alone.
	for i := 0; i < 9; i++ {
		h.advance(3 * time.Second)
		h.g.heartbeat(h.now, protocol.HeartbeatRequest{Generation: 1, MemberID: m1})
		pending(t, j2)
	}
	h.advance(3 * time.Second)
	r := ready(t, j2)
	if r.Err != protocol.ErrNone || r.Leader != m2 || r.Generation != 2 || h.g.members[m1] != nil {
		t.Fatalf("after the rebalance timeout: %+v", r)
	}
}

func TestGroupInitialDelayAndPendingMemberExpiry(t *testing.T) {
	h := newGroupHarness(t, 3*time.Second)
	_, j1 := h.joinNew()
	h.advance(time.Second)
	_, j2 := h.joinNew()
	pending(t, j1)
	pending(t, j2)
	h.advance(2 * time.Second)
	r1, r2 := ready(t, j1), ready(t, j2)
	if r1.Generation != 1 || r2.Generation != 1 {
		t.Fatalf("both members should join generation 1: %+v %+v", r1, r2)
	}
	// A member id handed out with MEMBER_ID_REQUIRED expires if unused.
	r := ready(t, h.join("", nil))
	h.advance(11 * time.Second)
	if r := ready(t, h.join(r.MemberID, nil)); r.Err != protocol.ErrUnknownMemberID {
		t.Fatalf("join with an expired pending id: %+v", r)
	}
}

func TestGroupStaticMembership(t *testing.T) {
	h := newGroupHarness(t, 0)
	inst1, inst2 := "i-1", "i-2"
	// Static members get an id at once (no MEMBER_ID_REQUIRED).
	j1 := h.join("", &inst1)
	r1 := ready(t, j1)
	if r1.Err != protocol.ErrNone || r1.MemberID == "" {
		t.Fatalf("static join: %+v", r1)
	}
	h.syncAll(1, r1.MemberID, r1.MemberID)
	j2 := h.join("", &inst2)
	j1 = h.join(r1.MemberID, &inst1)
	r1, r2 := ready(t, j1), ready(t, j2)
	h.syncAll(2, r1.MemberID, r1.MemberID, r2.MemberID)
	old2 := r2.MemberID

	// inst2 restarts (a new process, no member id): it takes over without
	// a rebalance, and the old member id is fenced.
	r := ready(t, h.join("", &inst2))
	if r.Err != protocol.ErrNone || r.Generation != 2 || r.MemberID == old2 || h.g.state != groupStable {
		t.Fatalf("static rejoin: %+v, state %v", r, h.g.state)
	}
	if m := h.g.takePersist(); m == nil || m.members[1].memberID != r.MemberID {
		t.Fatalf("the new member id is persisted: %+v", m)
	}
	if code := h.g.heartbeat(h.now, protocol.HeartbeatRequest{Generation: 2, MemberID: old2, InstanceID: &inst2}); code != protocol.ErrFencedInstanceID {
		t.Fatalf("heartbeat of the replaced member: %v", code)
	}
	if s := ready(t, h.g.sync(h.now, protocol.SyncGroupRequest{Generation: 2, MemberID: r.MemberID, InstanceID: &inst2})); s.Err != protocol.ErrNone || string(s.Assignment) != "a-"+old2 {
		t.Fatalf("the new member keeps the assignment: %+v", s)
	}
	if r := ready(t, h.join(old2, &inst2)); r.Err != protocol.ErrFencedInstanceID {
		t.Fatalf("join of the replaced member: %+v", r)
	}
	if codes := h.g.leave(h.now, []protocol.LeaveMember{{MemberID: old2, InstanceID: &inst2}}); codes[0] != protocol.ErrFencedInstanceID {
		t.Fatalf("leave of the replaced member: %v", codes)
	}
	// Leaving by instance id (the member id unknown to the caller).
	if codes := h.g.leave(h.now, []protocol.LeaveMember{{InstanceID: &inst2}}); codes[0] != protocol.ErrNone {
		t.Fatalf("leave by instance id: %v", codes)
	}
	if h.g.state != groupPreparingRebalance || len(h.g.members) != 1 {
		t.Fatalf("after a static member left: %v, %d members", h.g.state, len(h.g.members))
	}
}

func TestGroupProtocolChecks(t *testing.T) {
	h := newGroupHarness(t, 0)
	m1, j1 := h.joinNew()
	ready(t, j1)
	h.syncAll(1, m1, m1)
	req := joinReq("", nil)
	req.Protocols = []protocol.GroupProtocol{{Name: "roundrobin"}}
	if r := ready(t, h.g.join(h.now, req, h.newID)); r.Err != protocol.ErrInconsistentGroupProtocol {
		t.Fatalf("join without a common protocol: %+v", r)
	}
	req = joinReq("", nil)
	req.ProtocolType = "connect"
	if r := ready(t, h.g.join(h.now, req, h.newID)); r.Err != protocol.ErrInconsistentGroupProtocol {
		t.Fatalf("join with another protocol type: %+v", r)
	}
	if r := ready(t, h.join("unknown", nil)); r.Err != protocol.ErrUnknownMemberID {
		t.Fatalf("join with an unknown member id: %+v", r)
	}
	// Join v3: no MEMBER_ID_REQUIRED round.
	req = joinReq("", nil)
	req.Version = 3
	ch := h.g.join(h.now, req, h.newID)
	j1 = h.join(m1, nil)
	if r := ready(t, ch); r.Err != protocol.ErrNone || r.Generation != 2 {
		t.Fatalf("join v3: %+v", r)
	}
	ready(t, j1)
	// The sync of a wrong generation or protocol is refused.
	if s := ready(t, h.g.sync(h.now, protocol.SyncGroupRequest{Generation: 1, MemberID: m1})); s.Err != protocol.ErrIllegalGeneration {
		t.Fatalf("sync of an old generation: %+v", s)
	}
	wrong := "range"
	if s := ready(t, h.g.sync(h.now, protocol.SyncGroupRequest{Generation: 2, MemberID: m1, Protocol: &wrong})); s.Err != protocol.ErrInconsistentGroupProtocol {
		t.Fatalf("sync naming another protocol: %+v", s)
	}
}

func TestGroupLoadAfterFailover(t *testing.T) {
	h := newGroupHarness(t, 0)
	m1, j1 := h.joinNew()
	m2, j2 := "", (<-chan protocol.JoinGroupResult)(nil)
	ready(t, j1)
	h.syncAll(1, m1, m1)
	m2, j2 = h.joinNew()
	j1 = h.join(m1, nil)
	ready(t, j1)
	ready(t, j2)
	h.syncAll(2, m1, m1, m2)
	h.g.takePersist()

	// The record written at the sync, through the log's encoding, is what
	// a new coordinator loads.
	meta, err := decodeGroupMeta(encodeGroupMeta(h.g.metadata(h.now)))
	if err != nil {
		t.Fatal(err)
	}
	g := loadGroup("g", meta, h.now, 0)
	if g.state != groupStable || g.generation != 2 || g.leader != m1 || len(g.members) != 2 || g.protocol != "cooperative-sticky" {
		t.Fatalf("loaded group: %v gen %d leader %s members %d protocol %s", g.state, g.generation, g.leader, len(g.members), g.protocol)
	}
	if code := g.heartbeat(h.now, protocol.HeartbeatRequest{Generation: 2, MemberID: m2}); code != protocol.ErrNone {
		t.Fatalf("heartbeat after failover: %v", code)
	}
	if s := ready(t, g.sync(h.now, protocol.SyncGroupRequest{Generation: 2, MemberID: m2})); string(s.Assignment) != "a-"+m2 {
		t.Fatalf("assignment after failover: %+v", s)
	}
}
