package remote

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/internal/consensuspb"
	"github.com/chronik-go/chronik/plugins/internal/storagepb"
)

// EngineServer is the plugin side of the consensus protocol: it serves a
// consensus.Engine made by its factory, over a store and state machines
// that are the broker's, reached back through the connection dial opens
// (go-plugin's GRPCBroker).
//
// Leading across the boundary: the broker answers Group.Leading from its
// own record of the term this node leads, which it learns from
// LeaderChanged (with the engine's live Leading at the time of the call).
// Before the engine persists a vote or a later term (any store write that
// carries a group's state), the server checks the engine's Leading for the
// term the broker was told; if it turned false, it tells the broker that
// this node stepped down at that term, and waits for the answer, before
// the write goes out. Raft persists a vote or a term before it sends the
// message that carries it, so the broker's Leading turns false before this
// node's vote can let another node lead.
type EngineServer struct {
	consensuspb.UnimplementedEngineServer
	factory consensus.Factory
	log     *slog.Logger
	dial    func(id uint32) (*grpc.ClientConn, error)

	ctx    context.Context // ends at Shutdown
	cancel context.CancelFunc

	mu    sync.Mutex // held by Open and Shutdown, which set ready
	node  consensus.NodeID
	conn  *grpc.ClientConn
	store *Store
	host  *CallStream[consensuspb.HostRequest, consensuspb.HostResponse]
	sms   sync.Map // consensus.GroupID -> *smProxy
	ready atomic.Pointer[consensus.Engine]

	// OnHostLost, if set, is called (once) when the connection back to
	// the broker breaks while the engine runs: the broker is gone.
	OnHostLost func(error)
	lostOnce   sync.Once
}

// NewEngineServer returns the server of a consensus plugin; dial connects
// to the broker's Host and Store services by the id Open names.
func NewEngineServer(f consensus.Factory, log *slog.Logger, dial func(id uint32) (*grpc.ClientConn, error)) *EngineServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &EngineServer{factory: f, log: log, dial: dial, ctx: ctx, cancel: cancel}
}

func (s *EngineServer) config(req *consensuspb.ConfigRequest) (component.Config, error) {
	cfg, problems := decodeConfig("consensus", s.factory, req.GetType(), req.GetConfigJson())
	if problems != "" {
		return nil, consensus.Errorf(consensus.CodeInvalid, "%s", problems)
	}
	return cfg, nil
}

func (s *EngineServer) Validate(_ context.Context, req *consensuspb.ConfigRequest) (*consensuspb.Status, error) {
	_, err := s.config(req)
	return consensuspb.StatusOf(err), nil
}

func (s *EngineServer) engine() (consensus.Engine, error) {
	if e := s.ready.Load(); e != nil {
		return *e, nil
	}
	return nil, consensus.Errorf(consensus.CodeStopped, "the engine is not open")
}

func (s *EngineServer) Open(ctx context.Context, req *consensuspb.OpenRequest) (*consensuspb.OpenResponse, error) {
	fail := func(err error) (*consensuspb.OpenResponse, error) {
		return &consensuspb.OpenResponse{Status: consensuspb.StatusOf(err)}, nil
	}
	cfg, err := s.config(req.GetConfig())
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready.Load() != nil {
		return fail(consensus.Errorf(consensus.CodeInvalid, "the engine is already open"))
	}
	conn, err := s.dial(req.GetHostService())
	if err != nil {
		return fail(consensus.Errorf(consensus.CodeInternal, "connecting back to the broker: %v", err))
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	hs, err := consensuspb.NewHostClient(conn).Calls(s.ctx)
	if err != nil {
		return fail(consensus.Errorf(consensus.CodeInternal, "host calls: %v", err))
	}
	recv := func() (*consensuspb.HostResponse, error) {
		r, err := hs.Recv()
		if err != nil && s.ctx.Err() == nil && s.OnHostLost != nil {
			s.lostOnce.Do(func() { s.OnHostLost(err) })
		}
		return r, err
	}
	host := NewCallStream(hs.Send, recv,
		func(r *consensuspb.HostRequest, id uint64) { r.Id = id },
		func(r *consensuspb.HostResponse) uint64 { return r.GetId() })
	srpc := storagepb.NewStoreClient(conn)
	oresp, err := srpc.Open(ctx, &storagepb.ConfigRequest{})
	if err != nil {
		return fail(consensus.Errorf(consensus.CodeStorage, "the broker's store: %v", err))
	}
	st, err := Open(ctx, srpc, nil, Options{Name: "the broker's store", TailCache: 64 << 20, Stats: oresp.GetStats()})
	if err != nil {
		return fail(consensus.Errorf(consensus.CodeStorage, "%v", err))
	}
	peers := make(map[consensus.NodeID]string, len(req.GetPeers()))
	for id, a := range req.GetPeers() {
		peers[consensus.NodeID(id)] = a
	}
	s.node, s.host, s.store, s.conn = consensus.NodeID(req.GetNode()), host, st, conn
	var store storage.Store = &stepDownStore{Store: st, s: s}
	eng, err := s.factory.Create(s.ctx, component.Settings{Logger: s.log, DataDir: req.GetDataDir()}, cfg, consensus.Params{
		Node: s.node, Store: store, Listen: req.GetListen(), Peers: peers,
	})
	if err != nil {
		st.Close()
		return fail(err)
	}
	s.ready.Store(&eng)
	ok = true
	s.log.Info("consensus engine open", "type", s.factory.Type(), "node", s.node, "addr", eng.Addr())
	return &consensuspb.OpenResponse{Addr: eng.Addr()}, nil
}

// sm returns group g's state machine proxy, if the group was started.
func (s *EngineServer) sm(g consensus.GroupID) *smProxy {
	v, ok := s.sms.Load(g)
	if !ok {
		return nil
	}
	return v.(*smProxy)
}

func (s *EngineServer) StartGroup(_ context.Context, req *consensuspb.GroupRequest) (*consensuspb.Status, error) {
	eng, err := s.engine()
	if err != nil {
		return consensuspb.StatusOf(err), nil
	}
	id := consensus.GroupID(req.GetGroup())
	p := &smProxy{s: s, id: id}
	if _, loaded := s.sms.LoadOrStore(id, p); loaded {
		if _, ok := eng.Group(id); ok {
			return consensuspb.StatusOf(consensus.ErrExists), nil
		}
		s.sms.Store(id, p) // a group stopped before; a new proxy
	}
	members := make([]consensus.NodeID, len(req.GetMembers()))
	for i, m := range req.GetMembers() {
		members[i] = consensus.NodeID(m)
	}
	g, err := eng.StartGroup(s.ctx, consensus.GroupSpec{ID: id, Members: members, StateMachine: p})
	if err != nil {
		if consensus.CodeOf(err) != consensus.CodeExists {
			s.sms.CompareAndDelete(id, p)
		}
		return consensuspb.StatusOf(err), nil
	}
	p.group.Store(&g)
	// The engine may have reported this node's leadership while the group
	// was starting: tell the broker now.
	if t := p.told.Load(); t != 0 && g.Leading(t) {
		p.leading(t)
	}
	return &consensuspb.Status{}, nil
}

func (s *EngineServer) StopGroup(ctx context.Context, req *consensuspb.GroupRequest) (*consensuspb.Status, error) {
	eng, err := s.engine()
	if err != nil {
		return consensuspb.StatusOf(err), nil
	}
	err = eng.StopGroup(ctx, consensus.GroupID(req.GetGroup()))
	return consensuspb.StatusOf(err), nil
}

func (s *EngineServer) DeleteGroup(ctx context.Context, req *consensuspb.GroupRequest) (*consensuspb.Status, error) {
	eng, err := s.engine()
	if err != nil {
		return consensuspb.StatusOf(err), nil
	}
	err = eng.DeleteGroup(ctx, consensus.GroupID(req.GetGroup()))
	return consensuspb.StatusOf(err), nil
}

func (s *EngineServer) SetPeer(ctx context.Context, req *consensuspb.PeerRequest) (*consensuspb.Status, error) {
	eng, err := s.engine()
	if err != nil {
		return consensuspb.StatusOf(err), nil
	}
	return consensuspb.StatusOf(eng.SetPeer(ctx, consensus.NodeID(req.GetNode()), req.GetAddr())), nil
}

// Shutdown stops the engine and lets go of the broker's store (which the
// broker closes).
func (s *EngineServer) Shutdown(ctx context.Context, _ *consensuspb.Empty) (*consensuspb.Status, error) {
	return consensuspb.StatusOf(s.shutdown(ctx)), nil
}

func (s *EngineServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	eng := s.ready.Load()
	if eng == nil {
		return nil
	}
	err := (*eng).Shutdown(ctx)
	s.ready.Store(nil)
	s.cancel()
	s.store.Close()
	s.host.Fail(consensus.ErrStopped)
	s.conn.Close()
	s.log.Info("consensus engine shut down")
	return err
}

// ShutdownEngine stops the engine, if open: when the broker is gone.
func (s *EngineServer) ShutdownEngine(ctx context.Context) error { return s.shutdown(ctx) }

// group is the started group id (as StartGroup returned it; a stopped
// one answers as the engine's stopped groups do), found without the
// engine's lock (see smProxy.group).
func (s *EngineServer) group(id uint64) (consensus.Group, error) {
	if _, err := s.engine(); err != nil {
		return nil, err
	}
	if p := s.sm(consensus.GroupID(id)); p != nil {
		if g, ok := p.started(); ok {
			return g, nil
		}
	}
	return nil, consensus.Errorf(consensus.CodeStopped, "group %d is not running", id)
}

// Calls answers the Propose and ReadBarrier calls of the broker.
func (s *EngineServer) Calls(stream consensuspb.Engine_CallsServer) error {
	return ServeCalls(stream.Recv, stream.Send, func(req *consensuspb.CallRequest) *consensuspb.CallResponse {
		resp := &consensuspb.CallResponse{Id: req.GetId()}
		g, err := s.group(req.GetGroup())
		if err != nil {
			resp.Status = consensuspb.StatusOf(err)
			return resp
		}
		ctx := s.ctx
		if t := req.GetTimeoutNs(); t > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(t))
			defer cancel()
		}
		switch op := req.GetOp().(type) {
		case *consensuspb.CallRequest_Propose:
			resp.Index, err = g.Propose(ctx, op.Propose)
		case *consensuspb.CallRequest_ReadBarrier:
			err = g.ReadBarrier(ctx, op.ReadBarrier)
		default:
			err = consensus.Errorf(consensus.CodeInvalid, "unknown call")
		}
		resp.Status = consensuspb.StatusOf(err)
		return resp
	})
}

func (s *EngineServer) GroupStatus(_ context.Context, req *consensuspb.GroupRequest) (*consensuspb.StatusResponse, error) {
	g, err := s.group(req.GetGroup())
	if err != nil {
		return &consensuspb.StatusResponse{Status: consensuspb.StatusOf(err)}, nil
	}
	st := g.Status()
	r := &consensuspb.StatusResponse{Node: uint64(st.Node), Role: uint32(st.Role), Term: st.Term, Leader: uint64(st.Leader),
		Commit: st.Commit, Applied: st.Applied, Voters: make([]uint64, len(st.Voters)), Learners: make([]uint64, len(st.Learners))}
	for i, v := range st.Voters {
		r.Voters[i] = uint64(v)
	}
	for i, v := range st.Learners {
		r.Learners[i] = uint64(v)
	}
	return r, nil
}

func (s *EngineServer) TransferLeadership(ctx context.Context, req *consensuspb.TransferRequest) (*consensuspb.Status, error) {
	g, err := s.group(req.GetGroup())
	if err == nil {
		err = g.TransferLeadership(ctx, consensus.NodeID(req.GetTo()))
	}
	return consensuspb.StatusOf(err), nil
}

func (s *EngineServer) ChangeMembership(ctx context.Context, req *consensuspb.MembershipRequest) (*consensuspb.Status, error) {
	g, err := s.group(req.GetGroup())
	if err == nil {
		err = g.ChangeMembership(ctx, consensus.MembershipChange{Type: consensus.ChangeType(req.GetType()), Node: consensus.NodeID(req.GetNode())})
	}
	return consensuspb.StatusOf(err), nil
}

func (s *EngineServer) Compact(ctx context.Context, req *consensuspb.GroupRequest) (*consensuspb.Status, error) {
	g, err := s.group(req.GetGroup())
	if err == nil {
		err = g.Compact(ctx)
	}
	return consensuspb.StatusOf(err), nil
}

// smProxy is a group's state machine: the broker's, called over the Host
// stream.
type smProxy struct {
	s  *EngineServer
	id consensus.GroupID
	// told is the term the broker was told this node leads (0: none).
	told atomic.Uint64
	// group is the engine's group once StartGroup returned it. The proxy
	// asks it, not the engine: an engine may hold its lock across a
	// StartGroup (both built-ins do), which as a plugin reads the store
	// through the broker, and every other group's leader report and
	// state write would wait for it.
	group atomic.Pointer[consensus.Group]
}

// started is the group, once StartGroup returned it.
func (p *smProxy) started() (consensus.Group, bool) {
	g := p.group.Load()
	if g == nil {
		return nil, false
	}
	return *g, true
}

func (p *smProxy) call(req *consensuspb.HostRequest) (*consensuspb.HostResponse, error) {
	req.Group = uint64(p.id)
	resp, err := p.s.host.Call(req)
	if err != nil {
		return nil, consensus.Errorf(consensus.CodeStopped, "the broker's state machine: %v", err)
	}
	return resp, resp.GetStatus().Err()
}

// Apply sends the entries the engine wrote to the broker's store without
// their data, which the broker reads there: of the three times a record
// would cross the process boundary (proposed, written, applied), the
// third is left out. An entry is known to be there when the store's index
// (kept in this process, updated by every write) has its term at its
// index: in Raft an index and a term name one entry.
func (p *smProxy) Apply(_ context.Context, es []consensus.Entry) error {
	var stored func(i, t uint64) bool
	if l, err := p.s.store.Log(p.id); err == nil {
		stored = func(i, t uint64) bool {
			got, err := l.Term(i)
			return err == nil && got == t && t != 0
		}
	}
	_, err := p.call(&consensuspb.HostRequest{Op: &consensuspb.HostRequest_Apply{Apply: consensuspb.EntriesOf(es, stored)}})
	return err
}

func (p *smProxy) Snapshot(context.Context) (consensus.Snapshot, error) {
	resp, err := p.call(&consensuspb.HostRequest{Op: &consensuspb.HostRequest_Snapshot{Snapshot: &consensuspb.Empty{}}})
	if err != nil {
		return consensus.Snapshot{}, err
	}
	return consensus.Snapshot{Index: resp.GetSnapshot().GetIndex(), Data: resp.GetSnapshot().GetData()}, nil
}

func (p *smProxy) Restore(_ context.Context, snap consensus.Snapshot) error {
	_, err := p.call(&consensuspb.HostRequest{Op: &consensuspb.HostRequest_Restore{Restore: &consensuspb.Snapshot{Index: snap.Index, Data: snap.Data}}})
	return err
}

func (p *smProxy) LeaderChanged(ctx context.Context, leader consensus.NodeID, term uint64) {
	leading := false
	if leader == p.s.node && leader != 0 {
		// told first, Leading after: a step-down after this check finds
		// told set and tells the broker (see stepDownStore).
		p.told.Store(term)
		if g, ok := p.started(); ok {
			leading = g.Leading(term)
			if !leading {
				// The engine may report its leadership before its
				// Leading says so (it is only bound to turn false in
				// time): watch for it.
				go p.awaitLeading(g, term)
			}
		}
	}
	p.leaderChanged(ctx, leader, term, leading)
}

func (p *smProxy) leaderChanged(_ context.Context, leader consensus.NodeID, term uint64, leading bool) {
	_, err := p.call(&consensuspb.HostRequest{Op: &consensuspb.HostRequest_LeaderChanged{LeaderChanged: &consensuspb.Leader{Leader: uint64(leader), Term: term, Leading: leading}}})
	if err != nil && !errors.Is(err, consensus.ErrStopped) {
		p.s.log.Warn("leader change not delivered", "group", p.id, "err", err)
	}
}

// awaitLeading tells the broker that this node leads at term once the
// engine's Leading says so, unless a later report (told changed), the end
// of the group or a later term comes first.
func (p *smProxy) awaitLeading(g consensus.Group, term uint64) {
	wait := time.Millisecond
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		select {
		case <-p.s.ctx.Done():
			return
		case <-time.After(wait):
		}
		if p.told.Load() != term || g.Status().Term > term {
			return
		}
		if g.Leading(term) {
			p.leading(term)
			return
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// leading tells the broker this node leads at term (no state machine
// call: the broker only updates its Leading).
func (p *smProxy) leading(term uint64) {
	if _, err := p.call(&consensuspb.HostRequest{Op: &consensuspb.HostRequest_Leading{Leading: term}}); err != nil && !errors.Is(err, consensus.ErrStopped) {
		p.s.log.Warn("leadership not delivered", "group", p.id, "err", err)
	}
}

// stepDown tells the broker this node no longer leads at the term it was
// told, if the engine says so.
func (p *smProxy) stepDown() error {
	t := p.told.Load()
	if t == 0 {
		return nil
	}
	g, ok := p.started()
	if !ok || g.Leading(t) {
		// Not started: the broker was never told this group leads (that
		// takes the engine's Leading, read through the started group);
		// the check after StartGroup covers what happened meanwhile.
		return nil
	}
	if _, err := p.call(&consensuspb.HostRequest{Op: &consensuspb.HostRequest_StepDown{StepDown: t}}); err != nil {
		return err
	}
	p.told.CompareAndSwap(t, 0)
	return nil
}

// stepDownStore is the store the engine writes: before a write that
// carries a group's state (a vote, a term) it has the broker's Leading
// catch up with the engine's (see EngineServer).
type stepDownStore struct {
	*Store
	s *EngineServer
}

func (st *stepDownStore) Write(ctx context.Context, ws []storage.GroupWrite, sync bool) error {
	for i := range ws {
		if ws[i].State == nil {
			continue
		}
		if p := st.s.sm(ws[i].Group); p != nil {
			if err := p.stepDown(); err != nil {
				return storage.Errorf(storage.CodeFailed, "telling the broker of a step-down: %v", err)
			}
		}
	}
	return st.Store.Write(ctx, ws, sync)
}
