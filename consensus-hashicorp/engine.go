package hashicorp

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/consensus/transport"
	"github.com/chronik-go/chronik/core/storage"
)

// Engine runs the Raft groups of one broker, one raft.Raft each.
type Engine struct {
	cfg   Config
	node  consensus.NodeID
	store storage.Store
	log   *slog.Logger
	hlog  hclog.Logger
	tr    *transport.Transport
	w     *writer

	corr  atomic.Uint64 // correlation ids of outgoing requests
	calls sync.Map      // corr -> *call
	tok   atomic.Uint64 // proposal tokens

	wg sync.WaitGroup // background group stops

	mu     sync.RWMutex
	groups map[storage.GroupID]*group
	closed bool
}

var _ consensus.Engine = (*Engine)(nil)

// New starts an engine: its transport listener and its store writer.
func New(_ context.Context, set component.Settings, cfg Config, p consensus.Params) (*Engine, error) {
	set = set.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if p.Node == 0 || p.Store == nil {
		return nil, consensus.Errorf(consensus.CodeInvalid, "hashicorp: node id and store are required")
	}
	e := &Engine{
		cfg:    cfg,
		node:   p.Node,
		store:  p.Store,
		log:    set.Logger.With("node", uint64(p.Node)),
		groups: make(map[storage.GroupID]*group),
	}
	e.hlog = newHclog(e.log)
	tr, err := transport.New(transport.Config{Node: p.Node, Listen: p.Listen, Handler: (*handler)(e), Logger: e.log})
	if err != nil {
		return nil, err
	}
	e.tr = tr
	for id, a := range p.Peers {
		tr.SetPeer(id, a)
	}
	e.w = newWriter(p.Store)
	return e, nil
}

// Addr is the address peers reach this engine at.
func (e *Engine) Addr() string { return e.tr.Addr() }

// SetPeer sets the address of another broker's engine.
func (e *Engine) SetPeer(_ context.Context, id consensus.NodeID, a string) error {
	if id == 0 {
		return consensus.Errorf(consensus.CodeInvalid, "peer id 0")
	}
	if e.isClosed() {
		return consensus.ErrStopped
	}
	e.tr.SetPeer(id, a)
	return nil
}

// Group returns a started group.
func (e *Engine) Group(id storage.GroupID) (consensus.Group, bool) {
	g := e.group(id)
	if g == nil {
		return nil, false
	}
	return g, true
}

func (e *Engine) group(id storage.GroupID) *group {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.groups[id]
}

func (e *Engine) isClosed() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.closed
}

func errStorage(g storage.GroupID, err error) error {
	return consensus.Errorf(consensus.CodeStorage, "group %d: %w", g, err)
}

// StartGroup starts (or resumes from the store) one group.
func (e *Engine) StartGroup(ctx context.Context, spec consensus.GroupSpec) (consensus.Group, error) {
	if spec.StateMachine == nil {
		return nil, consensus.Errorf(consensus.CodeInvalid, "group %d: nil state machine", spec.ID)
	}
	e.mu.Lock()
	defer e.mu.Unlock() // rare; holding the lock keeps a duplicate start out
	if e.closed {
		return nil, consensus.ErrStopped
	}
	if _, ok := e.groups[spec.ID]; ok {
		return nil, consensus.Errorf(consensus.CodeExists, "group %d is already started", spec.ID)
	}
	g, err := e.newGroup(spec)
	if err != nil {
		return nil, err
	}
	e.groups[spec.ID] = g
	return g, nil
}

func (e *Engine) newGroup(spec consensus.GroupSpec) (*group, error) {
	lg, err := e.store.Log(spec.ID)
	if err != nil {
		return nil, errStorage(spec.ID, err)
	}
	blob, err := lg.State()
	if err != nil {
		return nil, errStorage(spec.ID, err)
	}
	gs, err := decodeState(blob)
	if err != nil {
		return nil, consensus.Errorf(consensus.CodeStorage, "group %d: %w", spec.ID, err)
	}
	last, err := lg.LastIndex()
	if err != nil {
		return nil, errStorage(spec.ID, err)
	}
	g := &group{
		e:       e,
		id:      spec.ID,
		sm:      spec.StateMachine,
		stopC:   make(chan struct{}),
		doneC:   make(chan struct{}),
		changed: make(chan struct{}),
		props:   make(map[uint64]*proposal),
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.st = &store{group: spec.ID, log: lg, w: e.w, state: gs, onTerm: g.onTerm}
	g.term, _ = g.st.GetUint64(keyCurrentTerm)
	g.vt = newVtrans(e, g)

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(addr(e.node))
	conf.HeartbeatTimeout = e.cfg.HeartbeatTimeout
	conf.ElectionTimeout = e.cfg.ElectionTimeout
	conf.LeaderLeaseTimeout = e.cfg.LeaderLeaseTimeout
	conf.CommitTimeout = e.cfg.CommitTimeout
	conf.MaxAppendEntries = e.cfg.MaxAppendEntries
	conf.BatchApplyCh = true
	conf.ShutdownOnRemove = false
	conf.SnapshotInterval = e.cfg.SnapshotInterval
	conf.SnapshotThreshold = e.cfg.SnapshotThreshold
	conf.TrailingLogs = e.cfg.TrailingLogs
	conf.Logger = e.hlog
	r, err := raft.NewRaft(conf, (*fsm)(g), g.st, g.st, (*snapshotStore)(g.st), g.vt)
	if err != nil {
		g.cancel()
		return nil, consensus.Errorf(consensus.CodeInternal, "group %d: %w", spec.ID, err)
	}
	g.r = r
	// Watch the library before any request reaches it (the transport
	// answers "not running" until ready), so that no leader goes unseen.
	r.RegisterObserver(raft.NewObserver(nil, false, g.observe))
	g.mu.Lock()
	g.state = r.State()
	g.mu.Unlock()
	g.vt.ready.Store(true)
	g.wg.Go(g.vt.serve)

	if blob == nil && last == 0 && len(spec.Members) > 0 {
		servers := make([]raft.Server, len(spec.Members))
		for i, m := range spec.Members {
			servers[i] = raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(addr(m)), Address: addr(m)}
		}
		// ErrCantBootstrap: a leader reached this node first.
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && err != raft.ErrCantBootstrap {
			_ = g.stop(context.Background())
			return nil, consensus.Errorf(consensus.CodeInternal, "group %d: bootstrap: %w", spec.ID, err)
		}
	}
	return g, nil
}

// removeGroup forgets g (if it is still the registered group for its id).
func (e *Engine) removeGroup(g *group) {
	e.mu.Lock()
	if e.groups[g.id] == g {
		delete(e.groups, g.id)
	}
	e.mu.Unlock()
}

// StopGroup stops one group and keeps its data.
func (e *Engine) StopGroup(ctx context.Context, id storage.GroupID) error {
	if e.isClosed() {
		return consensus.ErrStopped
	}
	g := e.group(id)
	if g == nil {
		return consensus.Errorf(consensus.CodeNotFound, "group %d is not started", id)
	}
	return g.stop(ctx)
}

// DeleteGroup stops the group (if started) and drops its data.
func (e *Engine) DeleteGroup(ctx context.Context, id storage.GroupID) error {
	if e.isClosed() {
		return consensus.ErrStopped
	}
	if g := e.group(id); g != nil {
		if err := g.stop(ctx); err != nil {
			return err
		}
	}
	if err := e.store.Drop(ctx, id); err != nil {
		return errStorage(id, err)
	}
	return nil
}

// Shutdown stops every group, the transport and the writer.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	groups := make([]*group, 0, len(e.groups))
	for _, g := range e.groups {
		groups = append(groups, g)
	}
	e.mu.Unlock()
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { errs[i] = g.stop(ctx) })
	}
	wg.Wait()
	e.wg.Wait()
	_ = e.tr.Close()
	e.w.close()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// newHclog bridges the library's logger to slog: warnings and errors only
// (with many groups its info messages are noise), and nothing at all when
// the logger would drop warnings anyway.
func newHclog(l *slog.Logger) hclog.Logger {
	if !l.Enabled(context.Background(), slog.LevelWarn) {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{l}, DisableTime: true})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	return p
}

var _ io.Writer = slogWriter{}
