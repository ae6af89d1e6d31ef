package broker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
	"github.com/chronik-go/chronik/core/storage"
)

// Forwarder sends a metadata change that this broker cannot make itself
// (it does not lead the metadata group) to the broker that can, over the
// client protocol. cmd wires protocol-kafka's client-side implementation.
type Forwarder interface {
	CreateTopics(ctx context.Context, addr string, req []protocol.CreateTopic) ([]protocol.TopicResult, error)
	AlterConfigs(ctx context.Context, addr string, req []protocol.AlterConfigsResource, validateOnly bool) ([]protocol.ConfigResult, error)
	IncrementalAlterConfigs(ctx context.Context, addr string, req []protocol.IncrementalAlterConfigsResource, validateOnly bool) ([]protocol.ConfigResult, error)
	DescribeConfigs(ctx context.Context, addr string, req []protocol.ConfigResource) ([]protocol.ConfigResult, error)
}

// controllerAddr is the client address of broker id ("" if unknown).
func (b *Broker) controllerAddr(id consensus.NodeID) string {
	for _, br := range b.cfg.Brokers {
		if consensus.NodeID(br.ID) == id && br.Host != "" {
			return net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		}
	}
	return ""
}

// Broker is one Chronik broker: it runs the metadata group, starts and stops
// partition groups from it, and serves protocol.Host.
type Broker struct {
	set    component.Settings
	log    *slog.Logger
	cfg    Config
	self   consensus.NodeID
	engine consensus.Engine
	store  storage.Store

	fwdMu sync.Mutex
	fwd   Forwarder

	meta      *metadata
	metaGroup consensus.Group
	pids      *pidAllocator
	coord     *coordinator // consumer groups this broker coordinates (coordinator.go)

	mu     sync.RWMutex
	parts  map[consensus.GroupID]*replica
	byName map[string][]*replica // index = partition number; nil where not hosted

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	goMu     sync.Mutex
	stopping bool // under goMu: no new tracked goroutines
}

// replica is a partition hosted on this broker.
type replica struct {
	p       *partition
	g       consensus.Group
	log     storage.Log
	meta    partitionMeta
	balance time.Time // next time the balancer may try a transfer
	backoff time.Duration
}

var _ protocol.Host = (*Broker)(nil)

// New creates a broker over an engine and the store the engine writes to.
// fwd may be nil (then auto-creation works only on the controller).
func New(set component.Settings, cfg Config, engine consensus.Engine, store storage.Store, fwd Forwarder) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = []protocol.Broker{{ID: cfg.NodeID}}
	}
	if !slices.ContainsFunc(cfg.Brokers, func(br protocol.Broker) bool { return br.ID == cfg.NodeID }) {
		return nil, fmt.Errorf("broker: node %d is not in the broker list", cfg.NodeID)
	}
	set = set.WithDefaults()
	pids, err := openPIDAllocator(store, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		set:    set,
		log:    set.Logger.With("node", cfg.NodeID),
		cfg:    cfg,
		self:   consensus.NodeID(cfg.NodeID),
		engine: engine,
		store:  store,
		fwd:    fwd,
		meta:   newMetadata(),
		pids:   pids,
		coord:  newCoordinator(),
		parts:  map[consensus.GroupID]*replica{},
		byName: map[string][]*replica{},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// SetAdvertised fills in this broker's client address when the config left
// it empty (a server listening on port 0); it must be called before Start.
func (b *Broker) SetAdvertised(host string, port int32) {
	for i := range b.cfg.Brokers {
		if b.cfg.Brokers[i].ID == b.cfg.NodeID && b.cfg.Brokers[i].Host == "" {
			b.cfg.Brokers[i].Host, b.cfg.Brokers[i].Port = host, port
		}
	}
}

// SetForwarder sets how this broker reaches the controller for changes it
// cannot make itself.
func (b *Broker) SetForwarder(f Forwarder) {
	b.fwdMu.Lock()
	b.fwd = f
	b.fwdMu.Unlock()
}

func (b *Broker) forwarder() Forwarder {
	b.fwdMu.Lock()
	defer b.fwdMu.Unlock()
	return b.fwd
}

// Start joins the metadata group and starts reconciling partitions from it.
func (b *Broker) Start(ctx context.Context) error {
	members := make([]consensus.NodeID, 0, len(b.cfg.Brokers))
	for _, br := range b.cfg.Brokers {
		members = append(members, consensus.NodeID(br.ID))
	}
	g, err := b.engine.StartGroup(ctx, consensus.GroupSpec{ID: MetadataGroup, Members: members, StateMachine: b.meta})
	if err != nil {
		return fmt.Errorf("broker: start metadata group: %w", err)
	}
	b.mu.Lock()
	b.metaGroup = g
	b.mu.Unlock()
	b.wg.Add(4)
	go b.reconcileLoop()
	go b.balanceLoop()
	go b.groupLoop()
	go b.retentionLoop()
	return nil
}

// Shutdown hands leadership of this broker's partitions to other replicas
// (bounded by ctx), then stops the broker's goroutines. The caller then
// shuts down the engine and the store.
func (b *Broker) Shutdown(ctx context.Context) error {
	if b.ctx.Err() == nil {
		b.handOff(ctx)
	}
	b.stop()
	return nil
}

// track registers a goroutine that is about to start, so that stop waits
// for it; it returns false once the broker is stopping (a WaitGroup must
// not grow while it is being waited on).
func (b *Broker) track() bool {
	b.goMu.Lock()
	defer b.goMu.Unlock()
	if b.stopping {
		return false
	}
	b.wg.Add(1)
	return true
}

// stop cancels the broker's goroutines and waits for them.
func (b *Broker) stop() {
	b.goMu.Lock()
	b.stopping = true
	b.goMu.Unlock()
	b.cancel()
	b.wg.Wait()
}

// Abort stops the broker's goroutines without handing anything off.
func (b *Broker) Abort() {
	b.stop()
}

// handOff transfers leadership of every group this node leads.
func (b *Broker) handOff(ctx context.Context) {
	b.mu.RLock()
	groups := make([]consensus.Group, 0, len(b.parts)+1)
	for _, r := range b.parts {
		groups = append(groups, r.g)
	}
	b.mu.RUnlock()
	if mg := b.metadataGroup(); mg != nil {
		groups = append(groups, mg)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, g := range groups {
		st := g.Status()
		if st.Leader != b.self {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, to := range st.Voters {
				if to == b.self {
					continue
				}
				tctx, cancel := context.WithTimeout(ctx, time.Second)
				err := g.TransferLeadership(tctx, to)
				cancel()
				if err == nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// reconcileLoop starts and stops partition groups to match the metadata.
func (b *Broker) reconcileLoop() {
	defer b.wg.Done()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		view, changed := b.meta.current()
		b.reconcile(view)
		select {
		case <-b.ctx.Done():
			return
		case <-changed:
		case <-retry.C:
		}
	}
}

func (b *Broker) reconcile(view *metaState) {
	want := map[consensus.GroupID]bool{}
	for _, t := range view.Topics {
		for i, pm := range t.Partitions {
			if !slices.Contains(pm.Replicas, b.cfg.NodeID) {
				continue
			}
			want[pm.Group] = true
			b.mu.RLock()
			_, running := b.parts[pm.Group]
			b.mu.RUnlock()
			if running {
				continue
			}
			if err := b.startPartition(t.Name, int32(i), pm); err != nil {
				b.log.Warn("start partition", "topic", t.Name, "partition", i, "err", err)
			}
		}
	}
	b.mu.RLock()
	var drop []consensus.GroupID
	for g := range b.parts {
		if !want[g] {
			drop = append(drop, g)
		}
	}
	b.mu.RUnlock()
	for _, g := range drop {
		b.mu.Lock()
		r := b.parts[g]
		delete(b.parts, g)
		b.mu.Unlock()
		if err := b.engine.DeleteGroup(b.ctx, g); err != nil && b.ctx.Err() == nil {
			b.log.Warn("delete partition group", "topic", r.p.topic, "partition", r.p.index, "err", err)
		}
	}
	b.rebuildIndex(view)
}

func (b *Broker) startPartition(topic string, index int32, pm partitionMeta) error {
	log, err := b.store.Log(pm.Group)
	if err != nil {
		return err
	}
	p := newPartition(topic, index, pm.Group, b.self)
	p.onLeader = b.becameLeader
	p.onCompact = b.compactPartition
	members := make([]consensus.NodeID, len(pm.Replicas))
	for i, id := range pm.Replicas {
		members[i] = consensus.NodeID(id)
	}
	g, err := b.engine.StartGroup(b.ctx, consensus.GroupSpec{ID: pm.Group, Members: members, StateMachine: p})
	if err != nil {
		return err
	}
	p.setLive(g)
	b.mu.Lock()
	b.parts[pm.Group] = &replica{p: p, g: g, log: log, meta: pm}
	b.mu.Unlock()
	return nil
}

// rebuildIndex maps topic names to the replicas hosted here.
func (b *Broker) rebuildIndex(view *metaState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	byName := make(map[string][]*replica, len(view.Topics))
	for _, t := range view.Topics {
		rs := make([]*replica, len(t.Partitions))
		for i, pm := range t.Partitions {
			rs[i] = b.parts[pm.Group]
		}
		byName[t.Name] = rs
	}
	b.byName = byName
}

// becameLeader proposes the epoch marker of a new term; the partition
// serves as leader once the marker is applied (see partition.serving).
func (b *Broker) becameLeader(p *partition, term uint64) {
	if !b.track() {
		return
	}
	go func() {
		defer b.wg.Done()
		data := make([]byte, 9)
		data[0] = cmdEpoch
		binary.BigEndian.PutUint64(data[1:], term)
		for attempt := 0; ; attempt++ {
			b.mu.RLock()
			r := b.parts[p.group]
			b.mu.RUnlock()
			if r == nil {
				// StartGroup has not returned yet; the group is registered shortly.
				select {
				case <-b.ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
			// The library's own answer first: Status is a published copy
			// that may lag it (or miss a change), and a leader that waits
			// for it to say so would never serve.
			leading := r.g.Leading(term)
			st := r.g.Status()
			if !leading && (st.Term > term || st.Term == term && st.Leader != b.self && st.Leader != 0) {
				return // a later term, or this term's leader is another node
			}
			if !leading {
				// The engine may call LeaderChanged before it publishes the
				// new status (etcd: after() reports, then setStatus); giving
				// up here would leave this node leading without ever serving.
				select {
				case <-b.ctx.Done():
					return
				case <-time.After(min(time.Duration(attempt+1)*5*time.Millisecond, 100*time.Millisecond)):
				}
				continue
			}
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			_, err := r.g.Propose(ctx, data)
			cancel()
			if err == nil || b.ctx.Err() != nil {
				return
			}
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt+1)*20*time.Millisecond, time.Second)):
			}
		}
	}()
}

// balanceLoop moves partition leadership to each partition's preferred
// replica (the first), so that leaders spread as assignments do.
func (b *Broker) balanceLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.BalanceInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.balance()
	}
}

func (b *Broker) balance() {
	now := time.Now()
	b.mu.RLock()
	var todo []*replica
	for _, r := range b.parts {
		if len(r.meta.Replicas) > 1 && r.meta.Replicas[0] != b.cfg.NodeID && now.After(r.balance) {
			todo = append(todo, r)
		}
	}
	b.mu.RUnlock()
	for _, r := range todo {
		st := r.g.Status()
		if st.Leader != b.self {
			continue
		}
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		err := r.g.TransferLeadership(ctx, consensus.NodeID(r.meta.Replicas[0]))
		cancel()
		b.mu.Lock()
		if err != nil {
			r.backoff = min(max(2*r.backoff, b.cfg.BalanceInterval), 5*time.Minute)
		} else {
			r.backoff = 0
		}
		r.balance = time.Now().Add(r.backoff)
		b.mu.Unlock()
	}
}

// lookup finds a hosted partition; code says why not when it is not.
func (b *Broker) lookup(topic string, part int32) (*replica, *topicMeta, protocol.ErrorCode) {
	view, _ := b.meta.current()
	t := view.Topics[topic]
	if t == nil || part < 0 || int(part) >= len(t.Partitions) {
		return nil, t, protocol.ErrUnknownTopicOrPartition
	}
	b.mu.RLock()
	rs := b.byName[topic]
	var r *replica
	if int(part) < len(rs) {
		r = rs[part]
	}
	b.mu.RUnlock()
	if r == nil {
		return nil, t, protocol.ErrNotLeaderOrFollower
	}
	return r, t, protocol.ErrNone
}

// Cluster implements protocol.Host.
func (b *Broker) Cluster(ctx context.Context) protocol.Cluster {
	c := protocol.Cluster{ID: b.cfg.ClusterID, Controller: -1, Brokers: slices.Clone(b.cfg.Brokers)}
	if mg := b.metadataGroup(); mg != nil {
		if l := mg.Status().Leader; l != 0 {
			c.Controller = int32(l)
		}
	}
	return c
}

// Metadata implements protocol.Host.
func (b *Broker) Metadata(ctx context.Context, names []string, autoCreate bool) ([]protocol.TopicMetadata, error) {
	view, _ := b.meta.current()
	if names == nil {
		for n := range view.Topics {
			names = append(names, n)
		}
		sort.Strings(names)
	} else if autoCreate && b.cfg.AutoCreateTopics {
		var missing []protocol.CreateTopic
		for _, n := range names {
			if view.Topics[n] == nil && validTopicName(n) == nil {
				missing = append(missing, protocol.CreateTopic{Name: n, NumPartitions: -1, ReplicationFactor: -1})
			}
		}
		if len(missing) > 0 {
			b.CreateTopics(ctx, missing, false)
			view, _ = b.meta.current()
		}
	}
	out := make([]protocol.TopicMetadata, 0, len(names))
	for _, n := range names {
		if err := validTopicName(n); err != nil {
			out = append(out, protocol.TopicMetadata{Name: n, Err: protocol.ErrInvalidTopicException})
			continue
		}
		t := view.Topics[n]
		if t == nil {
			out = append(out, protocol.TopicMetadata{Name: n, Err: protocol.ErrUnknownTopicOrPartition})
			continue
		}
		tm := protocol.TopicMetadata{Name: n, ID: t.ID, Internal: len(n) > 2 && n[:2] == "__"}
		b.mu.RLock()
		rs := b.byName[n]
		b.mu.RUnlock()
		for i, pm := range t.Partitions {
			p := protocol.PartitionMetadata{Partition: int32(i), Leader: -1, Replicas: pm.Replicas, ISR: pm.Replicas}
			var r *replica
			if i < len(rs) {
				r = rs[i]
			}
			if r != nil {
				ss := r.p.serving()
				// This broker is named leader only once it serves as one.
				if ss.leader != 0 && (ss.leader != b.self || ss.ready) {
					p.Leader, p.LeaderEpoch = int32(ss.leader), int32(ss.term)
				}
			} else {
				// Not hosted here: name the preferred replica; a client that
				// guessed wrong gets NOT_LEADER_OR_FOLLOWER and asks again.
				p.Leader = pm.Replicas[0]
			}
			if p.Leader == -1 {
				p.Err = protocol.ErrLeaderNotAvailable
			}
			tm.Partitions = append(tm.Partitions, p)
		}
		out = append(out, tm)
	}
	return out, nil
}

// leaderSettle is how long a request to a replica that is becoming leader
// waits for it to be ready before answering NOT_LEADER_OR_FOLLOWER.
const leaderSettle = 2 * time.Second

// proposeTimeout bounds a produce's wait for commit.
func (b *Broker) proposeTimeout(d time.Duration) time.Duration {
	if d <= 0 || d > b.cfg.ProduceTimeout {
		return b.cfg.ProduceTimeout
	}
	return d
}

// errorFromConsensus maps a proposal error to the Kafka code a client
// retries on.
func errorFromConsensus(err error) protocol.ErrorCode {
	switch consensus.CodeOf(err) {
	case consensus.CodeNotLeader, consensus.CodeStopped, consensus.CodeDropped, consensus.CodeNotFound:
		return protocol.ErrNotLeaderOrFollower
	case consensus.CodeTimeout:
		return protocol.ErrRequestTimedOut
	case consensus.CodeStorage:
		return protocol.ErrKafkaStorageError
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return protocol.ErrRequestTimedOut
	}
	return protocol.ErrUnknownServerError
}

// Produce implements protocol.Host.
func (b *Broker) Produce(ctx context.Context, req protocol.ProduceRequest) protocol.ProduceResult {
	res := protocol.ProduceResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	if req.Topic == OffsetsTopic {
		// Only the group coordinator writes there (as in Kafka).
		res.Err, res.ErrMsg = protocol.ErrInvalidTopicException, "cannot produce to the internal topic "+OffsetsTopic
		return res
	}
	r, t, code := b.lookup(req.Topic, req.Partition)
	if code != protocol.ErrNone {
		res.Err = code
		return res
	}
	if ss := r.p.waitServing(ctx, leaderSettle); !ss.ready {
		res.Err = protocol.ErrNotLeaderOrFollower
		return res
	}
	maxBytes := b.topicMaxMessageBytes(t)
	for pos := 0; pos < len(req.Records); {
		h, err := parseBatch(req.Records[pos:])
		if err != nil {
			res.Err, res.ErrMsg = batchErrCode(err), err.Error()
			return res
		}
		if h.Length > maxBytes {
			res.Err, res.ErrMsg = protocol.ErrMessageTooLarge, fmt.Sprintf("record batch of %d bytes exceeds max.message.bytes %d", h.Length, maxBytes)
			return res
		}
		if h.transactional() || h.control() {
			res.Err, res.ErrMsg = protocol.ErrInvalidRecord, "transactional and control batches are not supported"
			return res
		}
		pos += h.Length
	}
	if len(req.Records) == 0 {
		res.Err = protocol.ErrCorruptMessage
		return res
	}
	data := make([]byte, 1+len(req.Records))
	data[0] = cmdRecords
	copy(data[1:], req.Records)
	pctx, cancel := context.WithTimeout(ctx, b.proposeTimeout(req.Timeout))
	defer cancel()
	index, err := r.g.Propose(pctx, data)
	if err != nil {
		res.Err, res.ErrMsg = errorFromConsensus(err), err.Error()
		return res
	}
	ar, ok := r.p.takeResult(index)
	if !ok {
		res.Err, res.ErrMsg = protocol.ErrUnknownServerError, "apply result lost"
		return res
	}
	if ar.err != protocol.ErrNone {
		res.Err, res.ErrMsg = ar.err, ar.msg
		return res
	}
	res.BaseOffset = ar.baseOffset
	res.LogStartOffset = r.p.serving().startOffset
	return res
}

// readBarrierTimeout bounds the wait of a read for its barrier: a leader
// that cannot reach a quorum answers NOT_LEADER_OR_FOLLOWER by then even
// if Raft has not deposed it yet (an etcd node whose disk stalls does not
// tick, so it never steps down while the stall lasts).
const readBarrierTimeout = leaderSettle

// Fetch implements protocol.Host: it reads what is there and, while that is
// less than MinBytes, waits for commits until MaxWait. Every answer is
// read after a read barrier on each partition (see fetchOnce), so the
// barrier comes right before the response is built, also after a wait.
func (b *Broker) Fetch(ctx context.Context, req protocol.FetchRequest) []protocol.FetchResult {
	confirm := b.cfg.LinearizableReads
	out, total, stop := b.fetchOnce(ctx, req, confirm)
	if stop || total >= int(req.MinBytes) || req.MaxWait <= 0 {
		return out
	}
	wake := make(chan struct{}, 1)
	var registered []*partition
	defer func() {
		for _, p := range registered {
			p.removeWaiter(wake)
		}
	}()
	for _, fp := range req.Partitions {
		if r, _, code := b.lookup(fp.Topic, fp.Partition); code == protocol.ErrNone {
			r.p.addWaiter(wake)
			registered = append(registered, r.p)
		}
	}
	deadline := time.NewTimer(req.MaxWait)
	defer deadline.Stop()
	// Look again: a commit may have landed before registering. This look
	// only decides whether to wait; an answer is read again, confirmed.
	expired := false
	if _, total, stop := b.fetchOnce(ctx, req, false); !stop && total < int(req.MinBytes) {
		select {
		case <-wake:
		case <-deadline.C:
			expired = true
		case <-ctx.Done():
			return out
		}
	}
	for {
		out, total, stop = b.fetchOnce(ctx, req, confirm)
		if expired || stop || total >= int(req.MinBytes) {
			return out
		}
		select {
		case <-wake:
		case <-deadline.C:
			expired = true
		case <-ctx.Done():
			return out
		}
	}
}

// confirmReads runs the read barrier (consensus.Group.ReadBarrier) of every
// partition this broker serves as leader, concurrently (a barrier is a
// round trip; concurrent reads of a partition share its rounds), and
// returns, per partition, the term it confirmed (0: not confirmed). The
// caller takes the state it answers with afterwards, at that term.
func (b *Broker) confirmReads(ctx context.Context, parts []protocol.FetchPartition) []uint64 {
	terms := make([]uint64, len(parts))
	ctx, cancel := context.WithTimeout(ctx, readBarrierTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, fp := range parts {
		r, _, code := b.lookup(fp.Topic, fp.Partition)
		if code != protocol.ErrNone {
			continue
		}
		ss := r.p.serving()
		if !ss.ready {
			continue
		}
		confirm := func() {
			if r.p.readBarrier(ctx, ss.term) == nil {
				terms[i] = ss.term
			}
		}
		if len(parts) == 1 {
			confirm()
		} else {
			wg.Go(confirm)
		}
	}
	wg.Wait()
	return terms
}

// maxConcurrentReads bounds the partitions one fetch reads at once.
const maxConcurrentReads = 8

// fetchOnce reads every partition once; with confirm, after confirmReads,
// and a partition whose barrier failed (or whose term moved since) answers
// NOT_LEADER_OR_FOLLOWER. stop reports an error that should be returned at
// once.
func (b *Broker) fetchOnce(ctx context.Context, req protocol.FetchRequest, confirm bool) (out []protocol.FetchResult, total int, stop bool) {
	var terms []uint64
	if confirm {
		terms = b.confirmReads(ctx, req.Partitions)
	}
	out = make([]protocol.FetchResult, len(req.Partitions))
	budget := int(req.MaxBytes)
	if budget <= 0 {
		budget = 1 << 30
	}
	// Which partitions to read, at which state.
	type plan struct {
		r     *replica
		ss    servingState
		limit int // the most this partition may return, before earlier ones used any budget
		read  bool
	}
	plans := make([]plan, len(req.Partitions))
	for i, fp := range req.Partitions {
		fr := &out[i]
		fr.Topic, fr.Partition = fp.Topic, fp.Partition
		fr.HighWatermark, fr.LastStableOffset, fr.LogStartOffset = -1, -1, -1
		r, _, code := b.lookup(fp.Topic, fp.Partition)
		if code != protocol.ErrNone {
			fr.Err, stop = code, true
			continue
		}
		ss := r.p.serving()
		if !ss.ready || confirm && ss.term != terms[i] {
			fr.Err, stop = protocol.ErrNotLeaderOrFollower, true
			continue
		}
		fr.HighWatermark, fr.LastStableOffset, fr.LogStartOffset = ss.hwm, ss.hwm, ss.startOffset
		if fp.Offset < ss.startOffset || fp.Offset > ss.hwm {
			fr.Err, stop = protocol.ErrOffsetOutOfRange, true
			continue
		}
		limit := int(fp.MaxBytes)
		if limit <= 0 || limit > budget {
			limit = budget
		}
		plans[i] = plan{r: r, ss: ss, limit: limit, read: true}
	}
	// Read the partitions that have data concurrently (a store in another
	// process answers each read after a round trip), as many as the
	// request's budget could take whole; the pass below keeps the result
	// of each read that the sequential budget allows and reads the others
	// again with what is left.
	pre := make([][]byte, len(plans))
	preErr := make([]error, len(plans))
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxConcurrentReads)
	sum, n := 0, 0
	for i := range plans {
		p := &plans[i]
		if !p.read || req.Partitions[i].Offset >= p.ss.hwm {
			continue
		}
		if sum += p.limit; n > 0 && sum > budget {
			break
		}
		n++
		if n == 1 && i == len(plans)-1 {
			break // a lone read: made in place below
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pre[i], preErr[i] = b.readRecords(p.r, req.Partitions[i].Offset, p.ss.hwm, p.limit, true)
		})
	}
	wg.Wait()
	for i, fp := range req.Partitions {
		p := &plans[i]
		if !p.read {
			continue
		}
		fr := &out[i]
		limit := min(p.limit, budget)
		recs, err := pre[i], preErr[i]
		// A read made with a larger limit, or with mustOne where this one
		// may not return an oversized first batch, is made again.
		if recs == nil && err == nil || err == nil && len(recs) > limit {
			recs, err = b.readRecords(p.r, fp.Offset, p.ss.hwm, limit, total == 0)
		}
		if err != nil {
			if storage.CodeOf(err) == storage.CodeCompacted {
				fr.Err = protocol.ErrOffsetOutOfRange
			} else {
				fr.Err = protocol.ErrKafkaStorageError
				b.log.Error("fetch read", "topic", fp.Topic, "partition", fp.Partition, "err", err)
			}
			stop = true
			continue
		}
		fr.Records = recs
		total += len(recs)
		budget -= len(recs)
	}
	return out, total, stop
}

// readRecords returns whole batches from offset off below hwm, at most
// limit bytes, but at least one batch when mustOne (KIP-74).
func (b *Broker) readRecords(r *replica, off, hwm int64, limit int, mustOne bool) ([]byte, error) {
	if off >= hwm || limit <= 0 && !mustOne {
		return nil, nil
	}
	batches := r.p.locate(off, 4096)
	var out []byte
	for i := 0; i < len(batches); {
		// Read every batch of the same entry with one Entries call.
		lo := batches[i].raftIndex
		j := i
		size := 0
		for j < len(batches) && batches[j].lastOffset < hwm && (size+int(batches[j].length) <= limit-len(out) || (mustOne && len(out) == 0 && j == i)) {
			size += int(batches[j].length)
			j++
		}
		if j == i {
			break
		}
		hi := batches[j-1].raftIndex + 1
		ents, err := r.log.Entries(lo, hi, 0)
		if err != nil {
			return nil, err
		}
		byIndex := make(map[uint64][]byte, len(ents))
		for _, e := range ents {
			if e.Kind == storage.KindNormal && len(e.Data) > 0 && e.Data[0] == cmdRecords {
				byIndex[e.Index] = e.Data[1:]
			}
		}
		for ; i < j; i++ {
			bi := batches[i]
			d := byIndex[bi.raftIndex]
			if int(bi.pos+bi.length) > len(d) {
				return nil, storage.Errorf(storage.CodeCorrupt, "partition %s-%d: entry %d does not hold the batch at offset %d", r.p.topic, r.p.index, bi.raftIndex, bi.baseOffset)
			}
			start := len(out)
			out = append(out, d[bi.pos:bi.pos+bi.length]...)
			setBatchOffsets(out[start:], bi.baseOffset, int32(bi.term))
		}
		if j < len(batches) && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// ListOffsets implements protocol.Host.
func (b *Broker) ListOffsets(ctx context.Context, req protocol.ListOffsetsRequest) protocol.ListOffsetsResult {
	res := protocol.ListOffsetsResult{Timestamp: -1, Offset: -1, LeaderEpoch: -1}
	r, _, code := b.lookup(req.Topic, req.Partition)
	if code != protocol.ErrNone {
		res.Err = code
		return res
	}
	ss := r.p.serving()
	if !ss.ready {
		res.Err = protocol.ErrNotLeaderOrFollower
		return res
	}
	if b.cfg.LinearizableReads {
		// Confirm leadership, then read the offsets to answer with.
		var ok bool
		if ss, ok = r.p.confirmRead(ctx, ss.term); !ok {
			res.Err = protocol.ErrNotLeaderOrFollower
			return res
		}
	}
	res.LeaderEpoch = int32(ss.term)
	switch req.Timestamp {
	case -1:
		res.Offset = ss.hwm
	case -2:
		res.Offset = ss.startOffset
	case -3:
		if off, ts, ok := r.p.maxTimestamp(); ok {
			res.Offset, res.Timestamp = off, ts
		}
	default:
		bi, ok := r.p.batchForTime(req.Timestamp)
		if !ok {
			return res
		}
		ents, err := r.log.Entries(bi.raftIndex, bi.raftIndex+1, 0)
		if err != nil || len(ents) == 0 || len(ents[0].Data) < int(1+bi.pos+bi.length) {
			res.Offset, res.Timestamp = bi.baseOffset, bi.maxTS
			return res
		}
		batch := ents[0].Data[1+bi.pos : 1+bi.pos+bi.length]
		h, err := parseLoggedBatch(batch)
		delta := int32(0)
		if err == nil {
			delta = max(firstOffsetAtOrAfter(batch, h, req.Timestamp), 0)
		}
		res.Offset = max(bi.baseOffset+int64(delta), ss.startOffset)
		res.Timestamp = req.Timestamp
	}
	return res
}

// metaLeader reports whether this broker leads the metadata group, and the
// leader otherwise.
func (b *Broker) metaLeader() (bool, consensus.NodeID) {
	mg := b.metadataGroup()
	if mg == nil {
		return false, 0
	}
	st := mg.Status()
	return st.Leader == b.self, st.Leader
}

// metadataGroup is the metadata group once Start has joined it, else nil.
func (b *Broker) metadataGroup() consensus.Group {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.metaGroup
}

// proposeMeta proposes a metadata change on the leader and waits for it.
func (b *Broker) proposeMeta(ctx context.Context, c metaCmd) (protocol.ErrorCode, string) {
	data, err := json.Marshal(c)
	if err != nil {
		return protocol.ErrUnknownServerError, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mg := b.metadataGroup()
	if mg == nil {
		return protocol.ErrNotController, "the broker is starting"
	}
	index, err := mg.Propose(ctx, data)
	if err != nil {
		if consensus.CodeOf(err) == consensus.CodeNotLeader {
			return protocol.ErrNotController, err.Error()
		}
		return errorFromConsensus(err), err.Error()
	}
	ar, _ := b.meta.takeResult(index)
	return ar.err, ar.msg
}

// brokerIDs returns the broker ids, sorted.
func (b *Broker) brokerIDs() []int32 {
	ids := make([]int32, len(b.cfg.Brokers))
	for i, br := range b.cfg.Brokers {
		ids[i] = br.ID
	}
	slices.Sort(ids)
	return ids
}

// assign spreads count new partitions' replicas round-robin over the
// brokers, starting at a position that rotates with the partition index so
// that preferred leaders spread too.
func (b *Broker) assign(topic string, first, count int32, rf int16) [][]int32 {
	ids := b.brokerIDs()
	n := len(ids)
	start := int(hashString(topic) % uint32(n))
	out := make([][]int32, count)
	for i := range out {
		p := int(first) + i
		reps := make([]int32, rf)
		for j := range reps {
			reps[j] = ids[(start+p+j)%n]
		}
		out[i] = reps
	}
	return out
}

func hashString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// CreateTopics implements protocol.Host.
func (b *Broker) CreateTopics(ctx context.Context, req []protocol.CreateTopic, validateOnly bool) []protocol.TopicResult {
	out := make([]protocol.TopicResult, len(req))
	view, _ := b.meta.current()
	leader, leaderID := b.metaLeader()
	var forward []int
	for i, ct := range req {
		r := &out[i]
		r.Name, r.NumPartitions, r.ReplicationFactor = ct.Name, ct.NumPartitions, ct.ReplicationFactor
		if err := validTopicName(ct.Name); err != nil {
			r.Err, r.ErrMsg = protocol.ErrInvalidTopicException, err.Error()
			continue
		}
		if view.Topics[ct.Name] != nil {
			r.Err, r.ErrMsg = protocol.ErrTopicAlreadyExists, fmt.Sprintf("topic %q already exists", ct.Name)
			continue
		}
		var replicas [][]int32
		if len(ct.Assignment) > 0 {
			if ct.NumPartitions != -1 || ct.ReplicationFactor != -1 {
				r.Err, r.ErrMsg = protocol.ErrInvalidRequest, "a replica assignment excludes partition count and replication factor"
				continue
			}
			var err error
			if replicas, err = b.checkAssignment(ct.Assignment); err != nil {
				r.Err, r.ErrMsg = protocol.ErrInvalidReplicaAssignment, err.Error()
				continue
			}
			r.NumPartitions, r.ReplicationFactor = int32(len(replicas)), int16(len(replicas[0]))
		}
		if r.NumPartitions == -1 {
			r.NumPartitions = b.cfg.DefaultPartitions
		}
		if r.ReplicationFactor == -1 {
			r.ReplicationFactor = min(b.cfg.DefaultReplicationFactor, int16(len(b.cfg.Brokers)))
		}
		if r.NumPartitions < 1 || r.NumPartitions > 10000 {
			r.Err, r.ErrMsg = protocol.ErrInvalidPartitions, fmt.Sprintf("partition count %d is not in 1..10000", r.NumPartitions)
			continue
		}
		if r.ReplicationFactor < 1 || int(r.ReplicationFactor) > len(b.cfg.Brokers) {
			r.Err, r.ErrMsg = protocol.ErrInvalidReplicationFactor, fmt.Sprintf("replication factor %d with %d brokers", r.ReplicationFactor, len(b.cfg.Brokers))
			continue
		}
		if code, err := validateTopicConfigs(ct.Configs); err != nil {
			r.Err, r.ErrMsg = code, err.Error()
			continue
		}
		r.Configs = b.describeTopicConfigs(ct.Configs, nil)
		if validateOnly {
			continue
		}
		if !leader {
			forward = append(forward, i)
			continue
		}
		if replicas == nil {
			replicas = b.assign(ct.Name, 0, r.NumPartitions, r.ReplicationFactor)
		}
		var id [16]byte
		_, _ = rand.Read(id[:])
		r.Err, r.ErrMsg = b.proposeMeta(ctx, metaCmd{Op: "create_topic", Topic: ct.Name, ID: id, Replicas: replicas, Configs: ct.Configs})
		if r.Err == protocol.ErrNone {
			r.ID = id
		}
	}
	if len(forward) > 0 {
		b.forwardCreate(ctx, req, forward, out, leaderID)
	}
	if !validateOnly {
		b.awaitLeaders(ctx, out)
	}
	return out
}

// createSettle bounds how long CreateTopics waits for the new partitions'
// first leaders before it answers.
const createSettle = 5 * time.Second

// awaitLeaders waits, up to createSettle or ctx, until every replica this
// broker hosts of the topics created in out has a leader that serves, so a
// client that produces right after CreateTopics returns finds every
// partition writable (Kafka names leaders in the creating metadata record;
// here they are elected, which takes an election timeout).
func (b *Broker) awaitLeaders(ctx context.Context, out []protocol.TopicResult) {
	deadline := time.Now().Add(createSettle)
	for {
		view, _ := b.meta.current()
		settled := true
		for _, r := range out {
			t := view.Topics[r.Name]
			if r.Err != protocol.ErrNone || t == nil {
				continue
			}
			b.mu.RLock()
			rs := b.byName[r.Name]
			b.mu.RUnlock()
			for i, pm := range t.Partitions {
				if !slices.Contains(pm.Replicas, int32(b.self)) {
					continue
				}
				if i >= len(rs) || rs[i] == nil {
					settled = false
					break
				}
				ss := rs[i].p.serving()
				if ss.leader == 0 || ss.leader == b.self && !ss.ready {
					settled = false
					break
				}
			}
		}
		if settled || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// forwardCreate sends the topics at indexes idx to the metadata leader.
func (b *Broker) forwardCreate(ctx context.Context, req []protocol.CreateTopic, idx []int, out []protocol.TopicResult, leader consensus.NodeID) {
	fail := func(code protocol.ErrorCode, msg string) {
		for _, i := range idx {
			out[i].Err, out[i].ErrMsg = code, msg
		}
	}
	addr := b.controllerAddr(leader)
	fwd := b.forwarder()
	if fwd == nil || addr == "" {
		fail(protocol.ErrNotController, "this broker is not the controller")
		return
	}
	sub := make([]protocol.CreateTopic, len(idx))
	for k, i := range idx {
		sub[k] = req[i]
	}
	res, err := fwd.CreateTopics(ctx, addr, sub)
	if err != nil || len(res) != len(sub) {
		fail(protocol.ErrNotController, fmt.Sprintf("forwarding to the controller: %v", err))
		return
	}
	for k, i := range idx {
		out[i] = res[k]
	}
	// Wait (briefly) until the new topics are visible here too.
	deadline := time.After(2 * time.Second)
	for {
		view, changed := b.meta.current()
		all := true
		for _, i := range idx {
			if out[i].Err == protocol.ErrNone && view.Topics[out[i].Name] == nil {
				all = false
			}
		}
		if all {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (b *Broker) checkAssignment(a map[int32][]int32) ([][]int32, error) {
	n := int32(len(a))
	out := make([][]int32, n)
	ids := b.brokerIDs()
	for p, reps := range a {
		if p < 0 || p >= n {
			return nil, fmt.Errorf("partitions must be numbered 0..%d", n-1)
		}
		if len(reps) == 0 {
			return nil, fmt.Errorf("partition %d has no replicas", p)
		}
		seen := map[int32]bool{}
		for _, id := range reps {
			if !slices.Contains(ids, id) {
				return nil, fmt.Errorf("broker %d does not exist", id)
			}
			if seen[id] {
				return nil, fmt.Errorf("partition %d lists broker %d twice", p, id)
			}
			seen[id] = true
		}
		out[p] = slices.Clone(reps)
	}
	for p := range out {
		if len(out[p]) != len(out[0]) {
			return nil, errors.New("every partition needs the same number of replicas")
		}
	}
	return out, nil
}

// DeleteTopics implements protocol.Host.
func (b *Broker) DeleteTopics(ctx context.Context, names []string) []protocol.TopicResult {
	out := make([]protocol.TopicResult, len(names))
	view, _ := b.meta.current()
	leader, _ := b.metaLeader()
	for i, n := range names {
		r := &out[i]
		r.Name = n
		t := view.Topics[n]
		if t == nil {
			r.Err = protocol.ErrUnknownTopicOrPartition
			continue
		}
		r.ID = t.ID
		if !leader {
			r.Err = protocol.ErrNotController
			continue
		}
		r.Err, r.ErrMsg = b.proposeMeta(ctx, metaCmd{Op: "delete_topic", Topic: n})
	}
	return out
}

// CreatePartitions implements protocol.Host.
func (b *Broker) CreatePartitions(ctx context.Context, req []protocol.CreatePartitions, validateOnly bool) []protocol.TopicResult {
	out := make([]protocol.TopicResult, len(req))
	view, _ := b.meta.current()
	leader, _ := b.metaLeader()
	for i, cp := range req {
		r := &out[i]
		r.Name = cp.Topic
		t := view.Topics[cp.Topic]
		if t == nil {
			r.Err = protocol.ErrUnknownTopicOrPartition
			continue
		}
		cur := int32(len(t.Partitions))
		if cp.Count <= cur || cp.Count > 10000 {
			r.Err, r.ErrMsg = protocol.ErrInvalidPartitions, fmt.Sprintf("topic has %d partitions; the new count must be larger (got %d)", cur, cp.Count)
			continue
		}
		rf := int16(len(t.Partitions[0].Replicas))
		replicas := b.assign(cp.Topic, cur, cp.Count-cur, rf)
		if len(cp.Assignment) > 0 {
			if int32(len(cp.Assignment)) != cp.Count-cur {
				r.Err, r.ErrMsg = protocol.ErrInvalidReplicaAssignment, "the assignment must name every new partition"
				continue
			}
			m := map[int32][]int32{}
			for k, reps := range cp.Assignment {
				m[int32(k)] = reps
			}
			var err error
			if replicas, err = b.checkAssignment(m); err != nil {
				r.Err, r.ErrMsg = protocol.ErrInvalidReplicaAssignment, err.Error()
				continue
			}
		}
		if validateOnly {
			continue
		}
		if !leader {
			r.Err = protocol.ErrNotController
			continue
		}
		r.Err, r.ErrMsg = b.proposeMeta(ctx, metaCmd{Op: "create_partitions", Topic: cp.Topic, Replicas: replicas})
	}
	return out
}

// DescribeConfigs implements protocol.Host.
func (b *Broker) DescribeConfigs(ctx context.Context, req []protocol.ConfigResource) []protocol.ConfigResult {
	// The controller answers: this broker's view of the metadata may not
	// have the latest change yet, and a client reads its own writes.
	if out, ok := b.forwardConfigs(ctx, len(req), func(f Forwarder, addr string) ([]protocol.ConfigResult, error) {
		return f.DescribeConfigs(ctx, addr, req)
	}); ok {
		return out
	}
	out := make([]protocol.ConfigResult, len(req))
	view, _ := b.meta.current()
	for i, cr := range req {
		r := &out[i]
		r.Type, r.Name = cr.Type, cr.Name
		switch cr.Type {
		case 2: // topic
			t := view.Topics[cr.Name]
			if t == nil {
				r.Err, r.ErrMsg = protocol.ErrUnknownTopicOrPartition, fmt.Sprintf("topic %q does not exist", cr.Name)
				continue
			}
			r.Configs = b.describeTopicConfigs(t.Configs, cr.Keys)
		case 4: // broker
			r.Configs = b.describeBrokerConfigs(cr.Keys)
		default:
			r.Err, r.ErrMsg = protocol.ErrInvalidRequest, fmt.Sprintf("config resource type %d is not supported", cr.Type)
		}
	}
	return out
}

func (b *Broker) describeBrokerConfigs(keys []string) []protocol.ConfigEntry {
	vals := map[string]string{
		"auto.create.topics.enable":  fmt.Sprint(b.cfg.AutoCreateTopics),
		"num.partitions":             fmt.Sprint(b.cfg.DefaultPartitions),
		"default.replication.factor": fmt.Sprint(b.cfg.DefaultReplicationFactor),
		"message.max.bytes":          fmt.Sprint(b.cfg.MaxMessageBytes),
		"broker.id":                  fmt.Sprint(b.cfg.NodeID),
	}
	if keys == nil {
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	var out []protocol.ConfigEntry
	for _, k := range keys {
		if v, ok := vals[k]; ok {
			out = append(out, protocol.ConfigEntry{Name: k, Value: &v, ReadOnly: true, Source: protocol.ConfigSourceStaticBroker})
		}
	}
	return out
}

// InitProducerID implements protocol.Host.
func (b *Broker) InitProducerID(ctx context.Context, req protocol.InitProducerIDRequest) protocol.InitProducerIDResult {
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		return protocol.InitProducerIDResult{Err: protocol.ErrCoordinatorNotAvailable, ProducerID: -1, ProducerEpoch: -1}
	}
	id, err := b.pids.allocate(ctx)
	if err != nil {
		b.log.Error("allocate producer id", "err", err)
		return protocol.InitProducerIDResult{Err: protocol.ErrKafkaStorageError, ProducerID: -1, ProducerEpoch: -1}
	}
	return protocol.InitProducerIDResult{ProducerID: id, ProducerEpoch: 0}
}
