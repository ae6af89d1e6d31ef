package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
)

// The group coordinator. The coordinator of group G is the leader of
// partition partitionFor(G) of __consumer_offsets. Committed offsets and
// group metadata are records of that partition, proposed like produced
// batches and materialized on every replica at apply time (offsets.go);
// membership (join, sync, heartbeat) is in memory on the leader only
// (group.go) and rebuilt from the last metadata record when another
// replica takes over.

var _ protocol.GroupHost = (*Broker)(nil)

// coordinator holds the groups this broker coordinates. One mutex covers
// every group: group traffic is light and the state machine never blocks.
type coordinator struct {
	mu     sync.Mutex
	groups map[string]*coordGroup
	now    func() time.Time
}

// coordGroup is a group loaded on this broker as the leader of partition
// part in term term; a new term reloads it from the log.
type coordGroup struct {
	*group
	part int32
	term uint64
	// persist queue: metadata records are written one after another, in
	// the order the state machine produced them.
	queue   []*storedGroupMeta
	writing bool
}

func newCoordinator() *coordinator {
	return &coordinator{groups: map[string]*coordGroup{}, now: time.Now}
}

// groupTick is how often deadlines (sessions, join phases) are checked.
const groupTick = 100 * time.Millisecond

// groupLoop expires sessions, ends join phases and drops groups whose
// partition this broker no longer leads.
func (b *Broker) groupLoop() {
	defer b.wg.Done()
	t := time.NewTicker(groupTick)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			b.coord.mu.Lock()
			for name, cg := range b.coord.groups {
				cg.abandon()
				delete(b.coord.groups, name)
			}
			b.coord.mu.Unlock()
			return
		case <-t.C:
		}
		b.coord.mu.Lock()
		now := b.coord.now()
		for name, cg := range b.coord.groups {
			r, _, code := b.lookup(OffsetsTopic, cg.part)
			if code != protocol.ErrNone || !r.p.serving().ready || r.p.serving().term != cg.term {
				cg.abandon()
				delete(b.coord.groups, name)
				continue
			}
			cg.tick(now)
			b.flushLocked(r, cg)
		}
		b.coord.mu.Unlock()
	}
}

// abandon answers every waiting member NOT_COORDINATOR: this broker no
// longer coordinates the group (clients find the new coordinator).
func (cg *coordGroup) abandon() {
	for _, m := range cg.members {
		if m.join != nil {
			m.join <- protocol.JoinGroupResult{Err: protocol.ErrNotCoordinator, MemberID: m.id, Generation: -1}
			m.join = nil
		}
		if m.sync != nil {
			m.sync <- protocol.SyncGroupResult{Err: protocol.ErrNotCoordinator}
			m.sync = nil
		}
	}
}

// offsetsPartitions is the partition count of __consumer_offsets, 0 if it
// does not exist yet.
func (b *Broker) offsetsPartitions() int32 {
	view, _ := b.meta.current()
	if t := view.Topics[OffsetsTopic]; t != nil {
		return int32(len(t.Partitions))
	}
	return 0
}

// coordinatorFor returns the local replica leading group's partition, or
// the code a client re-finds its coordinator on.
func (b *Broker) coordinatorFor(ctx context.Context, group string) (*replica, int32, uint64, protocol.ErrorCode) {
	if group == "" {
		return nil, 0, 0, protocol.ErrInvalidGroupID
	}
	n := b.offsetsPartitions()
	if n == 0 {
		return nil, 0, 0, protocol.ErrNotCoordinator
	}
	part := partitionFor(group, n)
	r, _, code := b.lookup(OffsetsTopic, part)
	if code != protocol.ErrNone {
		return nil, 0, 0, protocol.ErrNotCoordinator
	}
	ss := r.p.waitServing(ctx, leaderSettle)
	if !ss.ready {
		if ss.leader == b.self {
			return nil, 0, 0, protocol.ErrCoordinatorLoadInProgress
		}
		return nil, 0, 0, protocol.ErrNotCoordinator
	}
	return r, part, ss.term, protocol.ErrNone
}

// loadLocked returns the in-memory group, loading it from the log when it
// is not loaded for this term. With create false it returns nil for a
// group the log does not know either. c.mu is held.
func (b *Broker) loadLocked(r *replica, part int32, term uint64, name string, create bool) *coordGroup {
	if cg := b.coord.groups[name]; cg != nil {
		if cg.term == term && cg.part == part {
			return cg
		}
		cg.abandon()
		delete(b.coord.groups, name)
	}
	sg := r.p.storedGroup(name)
	if sg == nil && !create {
		return nil
	}
	var meta *storedGroupMeta
	if sg != nil {
		meta = sg.meta
	}
	cg := &coordGroup{group: loadGroup(name, meta, b.coord.now(), b.cfg.GroupInitialRebalanceDelay), part: part, term: term}
	b.coord.groups[name] = cg
	return cg
}

// flushLocked starts writing the group's pending metadata record, if any.
// c.mu is held.
func (b *Broker) flushLocked(r *replica, cg *coordGroup) {
	if m := cg.takePersist(); m != nil {
		cg.queue = append(cg.queue, m)
	}
	if cg.writing || len(cg.queue) == 0 {
		return
	}
	if !b.track() {
		return // stopping
	}
	cg.writing = true
	go func() {
		defer b.wg.Done()
		for {
			b.coord.mu.Lock()
			if len(cg.queue) == 0 || b.coord.groups[cg.id] != cg {
				cg.writing = false
				b.coord.mu.Unlock()
				return
			}
			m := cg.queue[0]
			cg.queue = cg.queue[1:]
			b.coord.mu.Unlock()

			ctx, cancel := context.WithTimeout(b.ctx, b.cfg.ProduceTimeout)
			code := b.appendInternal(ctx, r, []record{{key: groupKey(cg.id), value: encodeGroupMeta(m)}})
			cancel()

			b.coord.mu.Lock()
			cg.persisted(b.coord.now(), m.generation, code)
			b.coord.mu.Unlock()
		}
	}()
}

// appendInternal proposes records into a __consumer_offsets partition and
// waits for them to be committed and applied here.
func (b *Broker) appendInternal(ctx context.Context, r *replica, recs []record) protocol.ErrorCode {
	batch := buildBatch(recs, time.Now().UnixMilli())
	data := make([]byte, 1+len(batch))
	data[0] = cmdRecords
	copy(data[1:], batch)
	index, err := r.g.Propose(ctx, data)
	if err != nil {
		code := errorFromConsensus(err)
		if code == protocol.ErrNotLeaderOrFollower {
			code = protocol.ErrNotCoordinator
		}
		return code
	}
	ar, ok := r.p.takeResult(index)
	if !ok {
		return protocol.ErrUnknownServerError
	}
	return ar.err
}

// withGroup runs f on the loaded group under the coordinator lock, then
// starts writing what f left to persist.
func (b *Broker) withGroup(r *replica, part int32, term uint64, name string, create bool, f func(cg *coordGroup, now time.Time)) {
	b.coord.mu.Lock()
	defer b.coord.mu.Unlock()
	cg := b.loadLocked(r, part, term, name, create)
	f(cg, b.coord.now())
	if cg != nil {
		b.flushLocked(r, cg)
	}
}

// FindCoordinator implements protocol.GroupHost. __consumer_offsets is
// created on the first call, through the normal CreateTopics path.
func (b *Broker) FindCoordinator(ctx context.Context, keyType int8, keys []string) []protocol.Coordinator {
	out := make([]protocol.Coordinator, len(keys))
	for i, k := range keys {
		out[i] = protocol.Coordinator{Key: k, Broker: protocol.Broker{ID: -1, Port: -1}}
	}
	fail := func(code protocol.ErrorCode, msg string) []protocol.Coordinator {
		for i := range out {
			out[i].Err, out[i].ErrMsg = code, msg
		}
		return out
	}
	if keyType != 0 {
		return fail(protocol.ErrCoordinatorNotAvailable, "transactions are not supported")
	}
	n := b.offsetsPartitions()
	if n == 0 {
		rf := int16(min(3, len(b.cfg.Brokers)))
		res := b.CreateTopics(ctx, []protocol.CreateTopic{{Name: OffsetsTopic, NumPartitions: b.cfg.OffsetsTopicPartitions, ReplicationFactor: rf}}, false)
		if res[0].Err != protocol.ErrNone && res[0].Err != protocol.ErrTopicAlreadyExists {
			b.log.Warn("create "+OffsetsTopic, "err", res[0].Err, "msg", res[0].ErrMsg)
		}
		if n = b.offsetsPartitions(); n == 0 {
			return fail(protocol.ErrCoordinatorNotAvailable, OffsetsTopic+" is being created")
		}
	}
	view, _ := b.meta.current()
	t := view.Topics[OffsetsTopic]
	for i, k := range keys {
		c := &out[i]
		if k == "" {
			c.Err, c.ErrMsg = protocol.ErrInvalidRequest, "empty group id"
			continue
		}
		part := partitionFor(k, n)
		leader := int32(-1)
		r, _, code := b.lookup(OffsetsTopic, part)
		switch {
		case code == protocol.ErrNone:
			ss := r.p.serving()
			if ss.leader == b.self && !ss.ready {
				ss = r.p.waitServing(ctx, leaderSettle)
			}
			if ss.leader != 0 && (ss.leader != b.self || ss.ready) {
				leader = int32(ss.leader)
			}
		case int(part) < len(t.Partitions):
			leader = t.Partitions[part].Replicas[0]
		}
		idx := slices.IndexFunc(b.cfg.Brokers, func(br protocol.Broker) bool { return br.ID == leader })
		if leader < 0 || idx < 0 {
			c.Err, c.ErrMsg = protocol.ErrCoordinatorNotAvailable, "the group's partition has no leader"
			continue
		}
		c.Broker = b.cfg.Brokers[idx]
	}
	return out
}

// newMemberID is Kafka's shape: client id, dash, a random suffix.
func newMemberID(clientID string) string {
	var buf [16]byte
	_, _ = rand.Read(buf[:])
	return clientID + "-" + hex.EncodeToString(buf[:])
}

// JoinGroup implements protocol.GroupHost.
func (b *Broker) JoinGroup(ctx context.Context, req protocol.JoinGroupRequest) protocol.JoinGroupResult {
	fail := func(code protocol.ErrorCode) protocol.JoinGroupResult {
		return protocol.JoinGroupResult{Err: code, MemberID: req.MemberID, Generation: -1}
	}
	if req.SessionTimeout < b.cfg.GroupMinSessionTimeout || req.SessionTimeout > b.cfg.GroupMaxSessionTimeout {
		return fail(protocol.ErrInvalidSessionTimeout)
	}
	r, part, term, code := b.coordinatorFor(ctx, req.Group)
	if code != protocol.ErrNone {
		return fail(code)
	}
	var ch <-chan protocol.JoinGroupResult
	b.withGroup(r, part, term, req.Group, true, func(cg *coordGroup, now time.Time) {
		ch = cg.join(now, req, func() string { return newMemberID(req.ClientID) })
	})
	select {
	case res := <-ch:
		return res
	case <-ctx.Done():
		return fail(protocol.ErrRebalanceInProgress)
	case <-b.ctx.Done():
		return fail(protocol.ErrNotCoordinator)
	}
}

// SyncGroup implements protocol.GroupHost.
func (b *Broker) SyncGroup(ctx context.Context, req protocol.SyncGroupRequest) protocol.SyncGroupResult {
	r, part, term, code := b.coordinatorFor(ctx, req.Group)
	if code != protocol.ErrNone {
		return protocol.SyncGroupResult{Err: code}
	}
	var ch <-chan protocol.SyncGroupResult
	b.withGroup(r, part, term, req.Group, false, func(cg *coordGroup, now time.Time) {
		if cg == nil {
			c := make(chan protocol.SyncGroupResult, 1)
			c <- protocol.SyncGroupResult{Err: protocol.ErrUnknownMemberID}
			ch = c
			return
		}
		ch = cg.sync(now, req)
	})
	select {
	case res := <-ch:
		return res
	case <-ctx.Done():
		return protocol.SyncGroupResult{Err: protocol.ErrRebalanceInProgress}
	case <-b.ctx.Done():
		return protocol.SyncGroupResult{Err: protocol.ErrNotCoordinator}
	}
}

// Heartbeat implements protocol.GroupHost.
func (b *Broker) Heartbeat(ctx context.Context, req protocol.HeartbeatRequest) protocol.ErrorCode {
	r, part, term, code := b.coordinatorFor(ctx, req.Group)
	if code != protocol.ErrNone {
		return code
	}
	code = protocol.ErrUnknownMemberID
	b.withGroup(r, part, term, req.Group, false, func(cg *coordGroup, now time.Time) {
		if cg != nil {
			code = cg.heartbeat(now, req)
		}
	})
	return code
}

// LeaveGroup implements protocol.GroupHost.
func (b *Broker) LeaveGroup(ctx context.Context, req protocol.LeaveGroupRequest) protocol.LeaveGroupResult {
	r, part, term, code := b.coordinatorFor(ctx, req.Group)
	if code != protocol.ErrNone {
		return protocol.LeaveGroupResult{Err: code}
	}
	var res protocol.LeaveGroupResult
	b.withGroup(r, part, term, req.Group, false, func(cg *coordGroup, now time.Time) {
		if cg == nil {
			res.Members = make([]protocol.ErrorCode, len(req.Members))
			for i := range res.Members {
				res.Members[i] = protocol.ErrUnknownMemberID
			}
			return
		}
		res.Members = cg.leave(now, req.Members)
	})
	return res
}

// maxOffsetMetadata is Kafka's offset.metadata.max.bytes default.
const maxOffsetMetadata = 4096

// OffsetCommit implements protocol.GroupHost.
func (b *Broker) OffsetCommit(ctx context.Context, req protocol.OffsetCommitRequest) protocol.OffsetCommitResult {
	res := protocol.OffsetCommitResult{Partitions: make([]protocol.ErrorCode, len(req.Partitions))}
	all := func(code protocol.ErrorCode) protocol.OffsetCommitResult {
		for i := range res.Partitions {
			if res.Partitions[i] == protocol.ErrNone {
				res.Partitions[i] = code
			}
		}
		return res
	}
	r, part, term, code := b.coordinatorFor(ctx, req.Group)
	if code != protocol.ErrNone {
		return all(code)
	}
	b.withGroup(r, part, term, req.Group, true, func(cg *coordGroup, now time.Time) {
		if len(cg.members) == 0 && cg.generation == 0 && req.Generation >= 0 {
			code = protocol.ErrIllegalGeneration // no such generation ever ran
			return
		}
		code = cg.canCommit(req)
	})
	if code != protocol.ErrNone {
		return all(code)
	}
	ts := time.Now().UnixMilli()
	var recs []record
	for i, p := range req.Partitions {
		md := ""
		if p.Metadata != nil {
			md = *p.Metadata
		}
		if len(md) > maxOffsetMetadata {
			res.Partitions[i] = protocol.ErrOffsetMetadataTooLarge
			continue
		}
		recs = append(recs, record{
			key:   offsetKey(req.Group, p.Topic, p.Partition),
			value: encodeOffsetValue(storedOffset{offset: p.Offset, leaderEpoch: p.LeaderEpoch, metadata: md, commitTS: ts}),
		})
	}
	if len(recs) == 0 {
		return res
	}
	pctx, cancel := context.WithTimeout(ctx, b.cfg.ProduceTimeout)
	defer cancel()
	return all(b.appendInternal(pctx, r, recs))
}

// OffsetFetch implements protocol.GroupHost. An unknown group has offset
// -1 for every partition and no error (as Kafka answers).
func (b *Broker) OffsetFetch(ctx context.Context, req protocol.OffsetFetchRequest) protocol.OffsetFetchResult {
	r, _, term, code := b.coordinatorFor(ctx, req.Group)
	if code != protocol.ErrNone {
		return protocol.OffsetFetchResult{Err: code}
	}
	if b.cfg.LinearizableReads {
		// A coordinator cut off from its partition's quorum, not yet
		// deposed, must not answer with offsets older than what its
		// successor already committed: confirm leadership first, then read.
		if _, ok := r.p.confirmRead(ctx, term); !ok {
			return protocol.OffsetFetchResult{Err: protocol.ErrNotCoordinator}
		}
	}
	sg := r.p.storedGroup(req.Group)
	var res protocol.OffsetFetchResult
	if req.Topics == nil {
		if sg == nil {
			return res
		}
		for tp, v := range sg.offsets {
			md := v.metadata
			res.Offsets = append(res.Offsets, protocol.FetchedOffset{Topic: tp.topic, Partition: tp.partition, Offset: v.offset, LeaderEpoch: v.leaderEpoch, Metadata: &md})
		}
		sort.Slice(res.Offsets, func(i, j int) bool {
			a, c := res.Offsets[i], res.Offsets[j]
			return a.Topic < c.Topic || a.Topic == c.Topic && a.Partition < c.Partition
		})
		return res
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			fo := protocol.FetchedOffset{Topic: t.Topic, Partition: p, Offset: -1, LeaderEpoch: -1}
			if sg != nil {
				if v, ok := sg.offsets[topicPartition{t.Topic, p}]; ok {
					md := v.metadata
					fo.Offset, fo.LeaderEpoch, fo.Metadata = v.offset, v.leaderEpoch, &md
				}
			}
			res.Offsets = append(res.Offsets, fo)
		}
	}
	return res
}

// DescribeGroups implements protocol.GroupHost.
func (b *Broker) DescribeGroups(ctx context.Context, groups []string) []protocol.GroupDescription {
	out := make([]protocol.GroupDescription, len(groups))
	for i, name := range groups {
		out[i] = protocol.GroupDescription{Group: name, State: groupDead.String()}
		r, part, term, code := b.coordinatorFor(ctx, name)
		if code != protocol.ErrNone {
			out[i].Err = code
			continue
		}
		b.withGroup(r, part, term, name, false, func(cg *coordGroup, now time.Time) {
			if cg != nil {
				out[i] = cg.describe()
			}
		})
	}
	return out
}

// ListGroups implements protocol.GroupHost: the groups of every
// __consumer_offsets partition this broker leads.
func (b *Broker) ListGroups(ctx context.Context, states []string) ([]protocol.GroupListing, protocol.ErrorCode) {
	n := b.offsetsPartitions()
	var out []protocol.GroupListing
	for part := int32(0); part < n; part++ {
		r, _, code := b.lookup(OffsetsTopic, part)
		if code != protocol.ErrNone {
			continue
		}
		ss := r.p.serving()
		if !ss.ready {
			continue
		}
		names := r.p.storedGroupNames()
		b.coord.mu.Lock()
		for name, cg := range b.coord.groups {
			if cg.part == part && cg.term == ss.term && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		for _, name := range names {
			l := protocol.GroupListing{Group: name}
			if cg := b.coord.groups[name]; cg != nil && cg.term == ss.term {
				l.ProtocolType, l.State = cg.protocolType, cg.state.String()
			} else if sg := r.p.storedGroup(name); sg != nil {
				l.State = groupEmpty.String()
				if sg.meta != nil {
					l.ProtocolType = sg.meta.protocolType
					if len(sg.meta.members) > 0 {
						l.State = groupStable.String()
					}
				}
			}
			if len(states) == 0 || slices.ContainsFunc(states, func(s string) bool { return strings.EqualFold(s, l.State) }) {
				out = append(out, l)
			}
		}
		b.coord.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, protocol.ErrNone
}

// DeleteGroups implements protocol.GroupHost: only groups without members
// are deleted (tombstones for the metadata and every committed offset).
func (b *Broker) DeleteGroups(ctx context.Context, groups []string) []protocol.GroupResult {
	out := make([]protocol.GroupResult, len(groups))
	for i, name := range groups {
		out[i].Group = name
		r, part, term, code := b.coordinatorFor(ctx, name)
		if code != protocol.ErrNone {
			out[i].Err = code
			continue
		}
		var recs []record
		b.withGroup(r, part, term, name, false, func(cg *coordGroup, now time.Time) {
			switch {
			case cg == nil:
				code = protocol.ErrGroupIDNotFound
			case len(cg.members) > 0:
				code = protocol.ErrNonEmptyGroup
			default:
				recs = append(recs, record{key: groupKey(name)})
				if sg := r.p.storedGroup(name); sg != nil {
					for tp := range sg.offsets {
						recs = append(recs, record{key: offsetKey(name, tp.topic, tp.partition)})
					}
				}
				cg.setState(groupDead, now)
				delete(b.coord.groups, name)
			}
		})
		if code == protocol.ErrNone {
			pctx, cancel := context.WithTimeout(ctx, b.cfg.ProduceTimeout)
			code = b.appendInternal(pctx, r, recs)
			cancel()
		}
		out[i].Err = code
	}
	return out
}

// OffsetDelete implements protocol.GroupHost: offsets of topics the
// group's members subscribe to are kept (GROUP_SUBSCRIBED_TO_TOPIC).
func (b *Broker) OffsetDelete(ctx context.Context, req protocol.OffsetDeleteRequest) protocol.OffsetDeleteResult {
	var res protocol.OffsetDeleteResult
	r, part, term, code := b.coordinatorFor(ctx, req.Group)
	if code != protocol.ErrNone {
		res.Err = code
		return res
	}
	subscribed := map[string]bool{}
	b.withGroup(r, part, term, req.Group, false, func(cg *coordGroup, now time.Time) {
		switch {
		case cg == nil:
			code = protocol.ErrGroupIDNotFound
		case len(cg.members) > 0 && cg.protocolType != "consumer":
			code = protocol.ErrNonEmptyGroup
		default:
			for _, m := range cg.members {
				ts, _ := subscribedTopics(m.metadataFor(cg.protocol))
				for _, t := range ts {
					subscribed[t] = true
				}
			}
		}
	})
	if code != protocol.ErrNone {
		res.Err = code
		return res
	}
	sg := r.p.storedGroup(req.Group)
	var recs []record
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			fo := protocol.FetchedOffset{Topic: t.Topic, Partition: p}
			if subscribed[t.Topic] {
				fo.Err = protocol.ErrGroupSubscribedToTopic
			} else if sg != nil {
				if _, ok := sg.offsets[topicPartition{t.Topic, p}]; ok {
					recs = append(recs, record{key: offsetKey(req.Group, t.Topic, p)})
				}
			}
			res.Partitions = append(res.Partitions, fo)
		}
	}
	if len(recs) > 0 {
		pctx, cancel := context.WithTimeout(ctx, b.cfg.ProduceTimeout)
		defer cancel()
		if code := b.appendInternal(pctx, r, recs); code != protocol.ErrNone {
			for i := range res.Partitions {
				if res.Partitions[i].Err == protocol.ErrNone {
					res.Partitions[i].Err = code
				}
			}
		}
	}
	return res
}
