package broker

import (
	"slices"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
)

// groupState is a classic consumer group's state, as Kafka names them.
type groupState int

const (
	groupEmpty groupState = iota
	groupPreparingRebalance
	groupCompletingRebalance
	groupStable
	groupDead
)

func (s groupState) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}[s]
}

// groupMember is one member of a group, in memory on the coordinator.
type groupMember struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []protocol.GroupProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte
	lastSeen         time.Time
	joinSeq          int // order of first join, for choosing a leader
	// join is set while the member waits for the join phase to end; sync
	// while it waits for the leader's assignment.
	join chan protocol.JoinGroupResult
	sync chan protocol.SyncGroupResult
}

// group is the classic group protocol's state machine for one group. It is
// pure: time comes in as now, answers go out on the members' buffered
// channels, and a metadata record to persist is handed out by takePersist.
// The coordinator serializes every call (one mutex), so group needs none.
type group struct {
	id           string
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*groupMember
	instances    map[string]string    // static instance id -> member id
	pending      map[string]time.Time // member ids handed out with MEMBER_ID_REQUIRED -> deadline
	seq          int
	// rebalanceDeadline ends the join phase: members not rejoined by then
	// are removed. joinDelayUntil holds an empty group's first join phase
	// open (group.initial.rebalance.delay.ms).
	rebalanceDeadline time.Time
	joinDelayUntil    time.Time
	initialDelay      time.Duration
	stateTime         time.Time
	// persist is a metadata record waiting to be written; persisting says
	// the leader's assignment of this generation is being written and the
	// syncs answer once it is.
	persist    *storedGroupMeta
	persisting bool
}

func newGroup(id string, now time.Time, initialDelay time.Duration) *group {
	return &group{
		id:           id,
		members:      map[string]*groupMember{},
		instances:    map[string]string{},
		pending:      map[string]time.Time{},
		initialDelay: initialDelay,
		stateTime:    now,
	}
}

// loadGroup rebuilds a group from its last metadata record (a new
// coordinator after failover): same generation, members and assignments;
// the members' session timers start now.
func loadGroup(id string, m *storedGroupMeta, now time.Time, initialDelay time.Duration) *group {
	g := newGroup(id, now, initialDelay)
	if m == nil {
		return g
	}
	g.generation, g.protocolType = m.generation, m.protocolType
	if m.protocol != nil {
		g.protocol = *m.protocol
	}
	if m.leader != nil {
		g.leader = *m.leader
	}
	for _, sm := range m.members {
		g.seq++
		mb := &groupMember{
			id: sm.memberID, instanceID: sm.instanceID, clientID: sm.clientID, clientHost: sm.clientHost,
			protocolType:     m.protocolType,
			protocols:        []protocol.GroupProtocol{{Name: g.protocol, Metadata: sm.subscription}},
			sessionTimeout:   time.Duration(sm.sessionTimeout) * time.Millisecond,
			rebalanceTimeout: time.Duration(sm.rebalanceTimeout) * time.Millisecond,
			assignment:       sm.assignment,
			lastSeen:         now,
			joinSeq:          g.seq,
		}
		g.members[mb.id] = mb
		if mb.instanceID != nil {
			g.instances[*mb.instanceID] = mb.id
		}
	}
	if len(g.members) > 0 {
		g.state = groupStable
	}
	return g
}

func (g *group) setState(s groupState, now time.Time) {
	g.state, g.stateTime = s, now
}

// checkInstance reports FENCED_INSTANCE_ID when a static member's instance
// id is now held by another member id.
func (g *group) checkInstance(memberID string, instanceID *string) protocol.ErrorCode {
	if instanceID == nil {
		return protocol.ErrNone
	}
	if cur, ok := g.instances[*instanceID]; ok && cur != memberID {
		return protocol.ErrFencedInstanceID
	}
	return protocol.ErrNone
}

// join handles a JoinGroup. It returns the channel the answer arrives on
// (buffered: the caller may stop waiting).
func (g *group) join(now time.Time, req protocol.JoinGroupRequest, newID func() string) <-chan protocol.JoinGroupResult {
	ch := make(chan protocol.JoinGroupResult, 1)
	fail := func(code protocol.ErrorCode) <-chan protocol.JoinGroupResult {
		ch <- protocol.JoinGroupResult{Err: code, MemberID: req.MemberID, Generation: -1}
		return ch
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(protocol.ErrInconsistentGroupProtocol)
	}
	for id, m := range g.members {
		if id == req.MemberID {
			continue
		}
		// Every member shares the protocol type: one other member is enough.
		if req.ProtocolType != m.protocolType || !g.supportsCommon(req.Protocols, req.MemberID) {
			return fail(protocol.ErrInconsistentGroupProtocol)
		}
		break
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	id := req.MemberID
	switch {
	case id == "" && req.InstanceID != nil:
		id = newID()
		if old, ok := g.instances[*req.InstanceID]; ok {
			if g.replaceStatic(now, old, id, req, ch) {
				return ch
			}
		}
	case id == "":
		id = newID()
		if req.Version >= 4 {
			// KIP-394: the member must come back with this id.
			g.pending[id] = now.Add(req.SessionTimeout)
			ch <- protocol.JoinGroupResult{Err: protocol.ErrMemberIDRequired, MemberID: id, Generation: -1}
			return ch
		}
	default:
		if code := g.checkInstance(id, req.InstanceID); code != protocol.ErrNone {
			return fail(code)
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
		} else if g.members[id] == nil {
			return fail(protocol.ErrUnknownMemberID)
		}
	}
	m := g.members[id]
	if m == nil {
		g.seq++
		m = &groupMember{id: id, joinSeq: g.seq}
		g.members[id] = m
	}
	if m.join != nil { // a duplicate join: the older request loses
		m.join <- protocol.JoinGroupResult{Err: protocol.ErrUnknownMemberID, MemberID: id, Generation: -1}
	}
	if m.sync != nil {
		m.sync <- protocol.SyncGroupResult{Err: protocol.ErrRebalanceInProgress}
		m.sync = nil
	}
	m.instanceID, m.clientID, m.clientHost = req.InstanceID, req.ClientID, req.ClientHost
	m.protocolType, m.protocols = req.ProtocolType, req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.lastSeen = now
	m.join = ch
	if req.InstanceID != nil {
		g.instances[*req.InstanceID] = id
	}
	if g.state != groupPreparingRebalance {
		g.prepareRebalance(now)
	}
	g.tryCompleteJoin(now)
	return ch
}

// replaceStatic gives a static member that rejoined without its member id
// the new id old -> id. In a stable group, when it is not the leader and
// its protocols are unchanged, it gets its current assignment back without
// a rebalance (KIP-345); it reports whether it answered.
func (g *group) replaceStatic(now time.Time, old, id string, req protocol.JoinGroupRequest, ch chan protocol.JoinGroupResult) bool {
	m := g.members[old]
	delete(g.members, old)
	if m == nil {
		return false
	}
	if m.join != nil {
		m.join <- protocol.JoinGroupResult{Err: protocol.ErrFencedInstanceID, MemberID: old, Generation: -1}
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- protocol.SyncGroupResult{Err: protocol.ErrFencedInstanceID}
		m.sync = nil
	}
	m.id = id
	g.members[id] = m
	g.instances[*req.InstanceID] = id
	wasLeader := g.leader == old
	if g.state == groupStable && !wasLeader && slices.EqualFunc(m.protocols, req.Protocols, func(a, b protocol.GroupProtocol) bool {
		return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
	}) {
		m.clientID, m.clientHost, m.lastSeen = req.ClientID, req.ClientHost, now
		m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
		g.persist = g.metadata(now)
		ch <- protocol.JoinGroupResult{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader, MemberID: id}
		return true
	}
	if wasLeader {
		g.leader = id
	}
	return false
}

// supportsCommon reports whether protos shares a protocol with every
// other member.
func (g *group) supportsCommon(protos []protocol.GroupProtocol, self string) bool {
	for _, p := range protos {
		all := true
		for id, m := range g.members {
			if id != self && !slices.ContainsFunc(m.protocols, func(q protocol.GroupProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// prepareRebalance starts a join phase: every member must rejoin within the
// largest rebalance timeout.
func (g *group) prepareRebalance(now time.Time) {
	for _, m := range g.members {
		if m.sync != nil {
			m.sync <- protocol.SyncGroupResult{Err: protocol.ErrRebalanceInProgress}
			m.sync = nil
		}
	}
	g.persisting = false
	var longest time.Duration
	for _, m := range g.members {
		longest = max(longest, m.rebalanceTimeout)
	}
	if g.state == groupEmpty {
		g.joinDelayUntil = now.Add(g.initialDelay)
	} else {
		g.joinDelayUntil = time.Time{}
	}
	g.rebalanceDeadline = now.Add(longest)
	g.setState(groupPreparingRebalance, now)
}

// tryCompleteJoin ends the join phase when every member has rejoined (and
// an empty group's initial delay is over), or at the rebalance deadline,
// removing the members that did not rejoin.
func (g *group) tryCompleteJoin(now time.Time) {
	if g.state != groupPreparingRebalance {
		return
	}
	waiting := false
	for _, m := range g.members {
		if m.join == nil {
			waiting = true
		}
	}
	deadline := !now.Before(g.rebalanceDeadline)
	if waiting && !deadline || now.Before(g.joinDelayUntil) && !deadline {
		return
	}
	for id, m := range g.members {
		if m.join == nil {
			g.remove(id)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(groupEmpty, now)
		g.persist = g.metadata(now)
		return
	}
	g.protocol = g.selectProtocol()
	if g.members[g.leader] == nil {
		g.leader = ""
		first := 0
		for id, m := range g.members {
			if g.leader == "" || m.joinSeq < first {
				g.leader, first = id, m.joinSeq
			}
		}
	}
	g.protocolType = g.members[g.leader].protocolType
	g.setState(groupCompletingRebalance, now)
	var all []protocol.JoinGroupMember
	for _, id := range g.memberOrder() {
		m := g.members[id]
		all = append(all, protocol.JoinGroupMember{MemberID: id, InstanceID: m.instanceID, Metadata: m.metadataFor(g.protocol)})
	}
	for id, m := range g.members {
		res := protocol.JoinGroupResult{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader, MemberID: id}
		if id == g.leader {
			res.Members = all
		}
		m.join <- res
		m.join = nil
		m.lastSeen = now
	}
}

// memberOrder lists member ids in join order.
func (g *group) memberOrder() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return g.members[a].joinSeq - g.members[b].joinSeq })
	return ids
}

func (m *groupMember) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// selectProtocol is Kafka's vote: among the protocols every member
// supports, each member votes for the first it lists; the most votes win
// (ties go to the leader's preference order, then the first joiner's).
func (g *group) selectProtocol() string {
	votes := map[string]int{}
	order := g.memberOrder()
	var candidates []string
	for _, p := range g.members[order[0]].protocols {
		ok := true
		for _, m := range g.members {
			if m.metadataFor(p.Name) == nil && !slices.ContainsFunc(m.protocols, func(q protocol.GroupProtocol) bool { return q.Name == p.Name }) {
				ok = false
			}
		}
		if ok {
			candidates = append(candidates, p.Name)
		}
	}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// remove drops a member; the caller decides whether to rebalance.
func (g *group) remove(id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	if m.join != nil {
		m.join <- protocol.JoinGroupResult{Err: protocol.ErrUnknownMemberID, MemberID: id, Generation: -1}
	}
	if m.sync != nil {
		m.sync <- protocol.SyncGroupResult{Err: protocol.ErrUnknownMemberID}
	}
	if m.instanceID != nil && g.instances[*m.instanceID] == id {
		delete(g.instances, *m.instanceID)
	}
	delete(g.members, id)
}

// removeAndRebalance removes a member that left or expired. Unless the
// group is between a join phase and the leader's assignment (whose
// generation has no assignments yet), the smaller membership is persisted:
// a coordinator elected before the next sync then does not wait a whole
// session timeout for a member that is gone.
func (g *group) removeAndRebalance(now time.Time, id string) {
	before := g.state
	g.remove(id)
	defer func() {
		if g.persist == nil && (before == groupStable || before == groupPreparingRebalance) && g.state != groupCompletingRebalance {
			g.persist = g.metadata(now)
		}
	}()
	switch g.state {
	case groupStable, groupCompletingRebalance:
		g.prepareRebalance(now)
		g.tryCompleteJoin(now)
	case groupPreparingRebalance:
		g.tryCompleteJoin(now)
	}
}

// sync handles a SyncGroup.
func (g *group) sync(now time.Time, req protocol.SyncGroupRequest) <-chan protocol.SyncGroupResult {
	ch := make(chan protocol.SyncGroupResult, 1)
	fail := func(code protocol.ErrorCode) <-chan protocol.SyncGroupResult {
		ch <- protocol.SyncGroupResult{Err: code}
		return ch
	}
	m := g.members[req.MemberID]
	if code := g.checkInstance(req.MemberID, req.InstanceID); code != protocol.ErrNone {
		return fail(code)
	}
	if m == nil {
		return fail(protocol.ErrUnknownMemberID)
	}
	if req.Generation != g.generation {
		return fail(protocol.ErrIllegalGeneration)
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType || req.Protocol != nil && *req.Protocol != g.protocol {
		return fail(protocol.ErrInconsistentGroupProtocol)
	}
	m.lastSeen = now
	switch g.state {
	case groupPreparingRebalance:
		return fail(protocol.ErrRebalanceInProgress)
	case groupStable:
		ch <- protocol.SyncGroupResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
		return ch
	case groupCompletingRebalance:
	default:
		return fail(protocol.ErrUnknownMemberID)
	}
	if m.sync != nil {
		m.sync <- protocol.SyncGroupResult{Err: protocol.ErrRebalanceInProgress}
	}
	m.sync = ch
	if req.MemberID == g.leader && !g.persisting {
		for _, mb := range g.members {
			mb.assignment = nil
		}
		for _, a := range req.Assignments {
			if mb := g.members[a.MemberID]; mb != nil {
				mb.assignment = a.Assignment
			}
		}
		g.persisting = true
		g.persist = g.metadata(now)
	}
	return ch
}

// persisted is called once the metadata record of generation gen was
// written (err ErrNone) or failed: the waiting syncs are answered.
func (g *group) persisted(now time.Time, gen int32, code protocol.ErrorCode) {
	if g.state != groupCompletingRebalance || g.generation != gen || !g.persisting {
		return
	}
	g.persisting = false
	if code != protocol.ErrNone {
		for _, m := range g.members {
			if m.sync != nil {
				m.sync <- protocol.SyncGroupResult{Err: code}
				m.sync = nil
			}
		}
		g.prepareRebalance(now)
		return
	}
	g.setState(groupStable, now)
	for _, m := range g.members {
		if m.sync != nil {
			m.sync <- protocol.SyncGroupResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
			m.sync = nil
		}
		m.lastSeen = now
	}
}

// takePersist hands out the metadata record to write, if any.
func (g *group) takePersist() *storedGroupMeta {
	p := g.persist
	g.persist = nil
	return p
}

// metadata is the group's metadata record as of now.
func (g *group) metadata(now time.Time) *storedGroupMeta {
	m := &storedGroupMeta{protocolType: g.protocolType, generation: g.generation, stateTS: now.UnixMilli()}
	if g.protocol != "" {
		p := g.protocol
		m.protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		m.leader = &l
	}
	for _, id := range g.memberOrder() {
		mb := g.members[id]
		m.members = append(m.members, storedMember{
			memberID: id, instanceID: mb.instanceID, clientID: mb.clientID, clientHost: mb.clientHost,
			rebalanceTimeout: int32(mb.rebalanceTimeout / time.Millisecond),
			sessionTimeout:   int32(mb.sessionTimeout / time.Millisecond),
			subscription:     mb.metadataFor(g.protocol),
			assignment:       mb.assignment,
		})
	}
	return m
}

// heartbeat handles a Heartbeat.
func (g *group) heartbeat(now time.Time, req protocol.HeartbeatRequest) protocol.ErrorCode {
	if code := g.checkInstance(req.MemberID, req.InstanceID); code != protocol.ErrNone {
		return code
	}
	m := g.members[req.MemberID]
	if m == nil {
		return protocol.ErrUnknownMemberID
	}
	if req.Generation != g.generation {
		return protocol.ErrIllegalGeneration
	}
	m.lastSeen = now
	if g.state == groupPreparingRebalance {
		return protocol.ErrRebalanceInProgress
	}
	return protocol.ErrNone
}

// leave handles a LeaveGroup: one code per member.
func (g *group) leave(now time.Time, members []protocol.LeaveMember) []protocol.ErrorCode {
	out := make([]protocol.ErrorCode, len(members))
	for i, lm := range members {
		id := lm.MemberID
		if lm.InstanceID != nil {
			cur, ok := g.instances[*lm.InstanceID]
			switch {
			case !ok:
				out[i] = protocol.ErrUnknownMemberID
				continue
			case id != "" && cur != id:
				out[i] = protocol.ErrFencedInstanceID
				continue
			}
			id = cur
		}
		if g.members[id] == nil {
			if _, ok := g.pending[id]; ok {
				delete(g.pending, id)
				continue
			}
			out[i] = protocol.ErrUnknownMemberID
			continue
		}
		g.removeAndRebalance(now, id)
	}
	return out
}

// tick expires pending member ids and members whose session ran out, and
// ends join phases whose deadline or initial delay passed.
func (g *group) tick(now time.Time) {
	for id, d := range g.pending {
		if now.After(d) {
			delete(g.pending, id)
		}
	}
	for _, id := range g.memberOrder() {
		m := g.members[id]
		if m == nil || m.join != nil {
			continue // a member waiting in a join phase is alive
		}
		if now.Sub(m.lastSeen) > m.sessionTimeout {
			g.removeAndRebalance(now, id)
		}
	}
	g.tryCompleteJoin(now)
}

// canCommit checks an OffsetCommit's generation and member.
func (g *group) canCommit(req protocol.OffsetCommitRequest) protocol.ErrorCode {
	if req.Generation < 0 && req.MemberID == "" {
		if len(g.members) == 0 {
			return protocol.ErrNone
		}
		// Kafka lets a non-member commit only into an empty group.
		return protocol.ErrUnknownMemberID
	}
	if code := g.checkInstance(req.MemberID, req.InstanceID); code != protocol.ErrNone {
		return code
	}
	m := g.members[req.MemberID]
	if m == nil {
		return protocol.ErrUnknownMemberID
	}
	if req.Generation != g.generation {
		return protocol.ErrIllegalGeneration
	}
	if g.state == groupCompletingRebalance {
		return protocol.ErrRebalanceInProgress
	}
	return protocol.ErrNone
}

// describe describes the group.
func (g *group) describe() protocol.GroupDescription {
	d := protocol.GroupDescription{Group: g.id, State: g.state.String(), ProtocolType: g.protocolType}
	if g.state == groupStable || g.state == groupCompletingRebalance {
		d.Protocol = g.protocol
	}
	for _, id := range g.memberOrder() {
		m := g.members[id]
		gm := protocol.GroupMember{MemberID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if g.state == groupStable {
			gm.Metadata, gm.Assignment = m.metadataFor(g.protocol), m.assignment
		}
		d.Members = append(d.Members, gm)
	}
	return d
}
