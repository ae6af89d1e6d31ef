package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/internal/consensuspb"
	"github.com/chronik-go/chronik/plugins/internal/remote"
	"github.com/chronik-go/chronik/plugins/internal/storagepb"
	"github.com/chronik-go/chronik/plugins/sdk"
)

// ConsensusOptions say which consensus plugin to run and how.
type ConsensusOptions struct {
	// Type is the engine type the plugin must serve (etcd, hashicorp, ...).
	Type component.Type
	// Command starts the plugin process.
	Command Command
	// InProcess, if set, is served in this process instead, on a Unix
	// socket, and reached through the same protocol: the conformance
	// suite's gRPC shim mode.
	InProcess consensus.Factory
	// Config is the component's config section (its keys other than type
	// and plugin), decoded by the plugin over its defaults.
	Config map[string]any
	// DataDir is the broker's data directory, passed on to the engine.
	DataDir string
	// Logger receives the plugin's log and go-plugin's.
	Logger *slog.Logger

	_ struct{}
}

func (o *ConsensusOptions) name() string { return fmt.Sprintf("consensus plugin %s", o.Type) }

func (o *ConsensusOptions) configRequest() (*consensuspb.ConfigRequest, error) {
	var b []byte
	if len(o.Config) > 0 {
		var err error
		if b, err = json.Marshal(jsonSafe(o.Config)); err != nil {
			return nil, fmt.Errorf("%s: config section: %w", o.name(), err)
		}
	}
	return &consensuspb.ConfigRequest{Type: string(o.Type), ConfigJson: b}, nil
}

// Engine is a consensus.Engine run by a plugin. The plugin's engine sends
// and receives the peer traffic itself; it reaches the broker's state
// machines and store through services this side serves it back over
// go-plugin's GRPCBroker (one connection: the Host service, which carries
// every group's state machine calls on one stream, and the storage
// protocol's Store service over the broker's store). The broker reads
// partition data from its store directly, never through the plugin.
//
// Leading is answered here, from the term the plugin last reported this
// node leads and the step-downs it reports before the engine persists a
// vote or a later term (see remote.EngineServer). Status, Propose,
// ReadBarrier and the rest cross the process; Propose and ReadBarrier
// travel on one long-lived stream.
type Engine struct {
	name  string
	node  consensus.NodeID
	addr  string
	store storage.Store // the broker's, served to the plugin
	log   *slog.Logger
	rpc   consensuspb.EngineClient
	proc  *process
	// stopBack stops the services served to the plugin.
	stopBack func()

	calls  *remote.CallStream[consensuspb.CallRequest, consensuspb.CallResponse]
	cancel context.CancelFunc

	mu     sync.RWMutex
	groups map[consensus.GroupID]*Group

	closing  atomic.Bool
	closeMu  sync.Mutex
	closed   bool
	handlers sync.WaitGroup // host calls being answered

	failErr  atomic.Pointer[error]
	failed   chan struct{}
	failOnce sync.Once
}

var _ consensus.Engine = (*Engine)(nil)

// StartConsensus starts the consensus plugin and creates its engine with
// the parameters p: the store it is given is served to the plugin, which
// writes its logs there.
func StartConsensus(ctx context.Context, o ConsensusOptions, p consensus.Params) (_ *Engine, err error) {
	creq, err := o.configRequest()
	if err != nil {
		return nil, err
	}
	e := &Engine{name: o.name(), node: p.Node, store: p.Store, log: o.Logger, groups: map[consensus.GroupID]*Group{}, failed: make(chan struct{})}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	register := func(s *grpc.Server) {
		consensuspb.RegisterHostServer(s, &hostServer{e: e})
		storagepb.RegisterStoreServer(s, remote.NewBorrowedServer(p.Store, o.Logger, e.written))
	}
	var id uint32
	if o.InProcess != nil {
		e.proc, e.rpc, err = serveEngineInProcess(&o, register)
	} else {
		e.proc, e.rpc, id, err = startEngine(ctx, &o, register, &e.stopBack)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	sctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	cs, err := e.rpc.Calls(sctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.name, err)
	}
	e.calls = remote.NewCallStream(cs.Send, func() (*consensuspb.CallResponse, error) {
		r, err := cs.Recv()
		if err != nil && !e.closing.Load() {
			e.fail(fmt.Errorf("connection to the plugin lost: %w", err))
		}
		return r, err
	},
		func(r *consensuspb.CallRequest, id uint64) { r.Id = id },
		func(r *consensuspb.CallResponse) uint64 { return r.GetId() })
	peers := make(map[uint64]string, len(p.Peers))
	for n, a := range p.Peers {
		peers[uint64(n)] = a
	}
	resp, err := e.rpc.Open(ctx, &consensuspb.OpenRequest{Config: creq, Node: uint64(p.Node), Listen: p.Listen, Peers: peers, HostService: id, DataDir: o.DataDir})
	if err != nil {
		return nil, fmt.Errorf("%s: open: %w", e.name, err)
	}
	if err := resp.GetStatus().Err(); err != nil {
		if consensus.CodeOf(err) == consensus.CodeInvalid {
			return nil, &ConfigError{Plugin: e.name, Problems: strings.Split(resp.GetStatus().GetMessage(), "\n")}
		}
		return nil, fmt.Errorf("%s: %w", e.name, err)
	}
	e.addr = resp.GetAddr()
	if e.proc.run != nil {
		go e.watch()
	}
	return e, nil
}

// ValidateConsensus starts the plugin only to have it decode and validate
// the config section.
func ValidateConsensus(ctx context.Context, o ConsensusOptions) error {
	creq, err := o.configRequest()
	if err != nil {
		return err
	}
	var stopBack func()
	var p *process
	var rpc consensuspb.EngineClient
	if o.InProcess != nil {
		p, rpc, err = serveEngineInProcess(&o, func(*grpc.Server) {})
	} else {
		p, rpc, _, err = startEngine(ctx, &o, nil, &stopBack)
	}
	if err != nil {
		return err
	}
	defer p.Stop()
	st, err := rpc.Validate(ctx, creq)
	if err != nil {
		return fmt.Errorf("%s: validate: %w", o.name(), err)
	}
	if err := st.Err(); err != nil {
		if consensus.CodeOf(err) == consensus.CodeInvalid {
			return &ConfigError{Plugin: o.name(), Problems: strings.Split(st.GetMessage(), "\n")}
		}
		return err
	}
	return nil
}

// startEngine starts the plugin process and, if register is set, serves
// the host's services to it over go-plugin's broker, returning their id.
func startEngine(ctx context.Context, o *ConsensusOptions, register func(*grpc.Server), stopBack *func()) (*process, consensuspb.EngineClient, uint32, error) {
	ps := plugin.PluginSet{sdk.ConsensusPluginName: &sdk.ConsensusPlugin{}}
	p, raw, err := start(ctx, o.name(), o.Command, sdk.ConsensusHandshake, ps, o.Logger)
	if err != nil {
		return nil, nil, 0, err
	}
	cc := raw.(*sdk.ConsensusConn)
	var id uint32
	if register != nil {
		id = cc.Broker.NextId()
		srvC := make(chan *grpc.Server, 1)
		go func() {
			cc.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
				s := grpc.NewServer(append(opts, sdk.GRPCServerOptions()...)...)
				register(s)
				srvC <- s
				return s
			})
		}()
		*stopBack = func() {
			select {
			case s := <-srvC:
				s.Stop()
			default:
			}
		}
	}
	return p, consensuspb.NewEngineClient(cc.Conn), id, nil
}

// serveEngineInProcess serves o.InProcess on a Unix socket in a private
// directory, together with the host's services (register), and connects
// to it: the plugin side dials the same socket back.
func serveEngineInProcess(o *ConsensusOptions, register func(*grpc.Server)) (*process, consensuspb.EngineClient, error) {
	dir, err := os.MkdirTemp("", "chronik-shim-")
	if err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(dir, "plugin.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	dialOpts := append(sdk.GRPCDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	srv := grpc.NewServer(sdk.GRPCServerOptions()...)
	es := remote.NewEngineServer(o.InProcess, o.Logger, func(uint32) (*grpc.ClientConn, error) {
		return grpc.NewClient("unix://"+sock, dialOpts...)
	})
	consensuspb.RegisterEngineServer(srv, es)
	register(srv)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+sock, dialOpts...)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = es.ShutdownEngine(ctx)
		cancel()
		if conn != nil {
			conn.Close()
		}
		srv.Stop()
		<-served
		os.RemoveAll(dir)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return &process{shutdown: stop}, consensuspb.NewEngineClient(conn), nil
}

// watch fails the engine when the plugin process ends on its own.
func (e *Engine) watch() {
	<-e.proc.run.done
	if e.closing.Load() {
		return
	}
	e.fail(e.proc.ExitErr())
}

// fail latches err: the engine is unusable from now on, and no group
// leads.
func (e *Engine) fail(err error) error {
	if perr := e.proc.ExitErr(); perr != nil {
		err = perr
	}
	ce := consensus.Errorf(consensus.CodeStopped, "%s: %v", e.name, err)
	e.failErr.CompareAndSwap(nil, &ce)
	e.failOnce.Do(func() {
		e.mu.RLock()
		for _, g := range e.groups {
			g.revoke(^uint64(0), ^uint64(0))
		}
		e.mu.RUnlock()
		close(e.failed)
	})
	if e.calls != nil {
		e.calls.Fail(ce)
	}
	return *e.failErr.Load()
}

// Done is closed when the engine has failed for good: the plugin process
// ended, or the connection to it broke. Err then says how.
func (e *Engine) Done() <-chan struct{} { return e.failed }

// Err is the error the engine failed with (nil while it works); once the
// process has ended (it does within a second of a broken connection when
// it was killed), it says how.
func (e *Engine) Err() error {
	if e.failErr.Load() == nil {
		return nil
	}
	if e.proc.run != nil {
		select {
		case <-e.proc.run.done:
			return consensus.Errorf(consensus.CodeStopped, "%s: %v", e.name, e.proc.ExitErr())
		case <-time.After(time.Second):
		}
	}
	return *e.failErr.Load()
}

// Pid is the plugin's process id (0 in process).
func (e *Engine) Pid() int { return e.proc.Pid() }

// remoteErr turns the error of a call that did not get an answer into a
// consensus error: the plugin is gone, or going.
func (e *Engine) remoteErr(err error) error {
	if e.closing.Load() {
		return consensus.ErrStopped
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return &consensus.Error{Code: consensus.CodeTimeout, Err: context.DeadlineExceeded}
	case codes.Canceled:
		return &consensus.Error{Code: consensus.CodeTimeout, Err: context.Canceled}
	}
	if fe := e.failErr.Load(); fe != nil {
		return *fe
	}
	return e.fail(err)
}

func (e *Engine) check() error {
	if e.closing.Load() {
		return consensus.ErrStopped
	}
	if fe := e.failErr.Load(); fe != nil {
		return *fe
	}
	return nil
}

// StartGroup implements consensus.Engine. The group is known here before
// the plugin starts it, so that the state machine calls the plugin makes
// while it starts find it.
func (e *Engine) StartGroup(ctx context.Context, spec consensus.GroupSpec) (consensus.Group, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	if spec.StateMachine == nil {
		return nil, consensus.Errorf(consensus.CodeInvalid, "group %d: no state machine", spec.ID)
	}
	g := &Group{e: e, id: spec.ID, sm: spec.StateMachine}
	e.mu.Lock()
	if _, ok := e.groups[spec.ID]; ok {
		e.mu.Unlock()
		return nil, consensus.ErrExists
	}
	e.groups[spec.ID] = g
	e.mu.Unlock()
	members := make([]uint64, len(spec.Members))
	for i, m := range spec.Members {
		members[i] = uint64(m)
	}
	st, err := e.rpc.StartGroup(ctx, &consensuspb.GroupRequest{Group: uint64(spec.ID), Members: members})
	if err == nil {
		err = st.Err()
	} else {
		err = e.remoteErr(err)
	}
	if err != nil {
		e.mu.Lock()
		if e.groups[spec.ID] == g {
			delete(e.groups, spec.ID)
		}
		e.mu.Unlock()
		return nil, err
	}
	return g, nil
}

// Group implements consensus.Engine.
func (e *Engine) Group(id consensus.GroupID) (consensus.Group, bool) {
	if g := e.group(id); g != nil {
		return g, true
	}
	return nil, false
}

func (e *Engine) group(id consensus.GroupID) *Group {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.groups[id]
}

// forget drops the group once the plugin stopped it (no state machine
// call comes after).
func (e *Engine) forget(id consensus.GroupID) {
	e.mu.Lock()
	if g := e.groups[id]; g != nil {
		g.end()
		delete(e.groups, id)
	}
	e.mu.Unlock()
}

// StopGroup implements consensus.Engine.
func (e *Engine) StopGroup(ctx context.Context, id consensus.GroupID) error {
	if err := e.check(); err != nil {
		return err
	}
	st, err := e.rpc.StopGroup(ctx, &consensuspb.GroupRequest{Group: uint64(id)})
	if err != nil {
		return e.remoteErr(err)
	}
	if err := st.Err(); err != nil && consensus.CodeOf(err) != consensus.CodeNotFound {
		return err
	}
	e.forget(id)
	return st.Err()
}

// DeleteGroup implements consensus.Engine.
func (e *Engine) DeleteGroup(ctx context.Context, id consensus.GroupID) error {
	if err := e.check(); err != nil {
		return err
	}
	st, err := e.rpc.DeleteGroup(ctx, &consensuspb.GroupRequest{Group: uint64(id)})
	if err != nil {
		return e.remoteErr(err)
	}
	e.forget(id)
	return st.Err()
}

// SetPeer implements consensus.Engine.
func (e *Engine) SetPeer(ctx context.Context, id consensus.NodeID, addr string) error {
	if err := e.check(); err != nil {
		return err
	}
	st, err := e.rpc.SetPeer(ctx, &consensuspb.PeerRequest{Node: uint64(id), Addr: addr})
	if err != nil {
		return e.remoteErr(err)
	}
	return st.Err()
}

// Addr implements consensus.Engine: the plugin's peer listener.
func (e *Engine) Addr() string { return e.addr }

// Shutdown stops the engine in the plugin (every group; no state machine
// call comes after it returns), then the plugin.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var err error
	if e.failErr.Load() == nil {
		st, rerr := e.rpc.Shutdown(ctx, &consensuspb.Empty{})
		if rerr != nil {
			err = fmt.Errorf("%s: shutdown: %w", e.name, rerr)
		} else {
			err = st.Err()
		}
	}
	e.closing.Store(true)
	e.handlers.Wait()
	e.mu.Lock()
	for id, g := range e.groups {
		g.end()
		delete(e.groups, id)
	}
	e.mu.Unlock()
	e.stop()
	return err
}

func (e *Engine) stop() {
	if e.cancel != nil {
		e.cancel()
	}
	if e.calls != nil {
		e.calls.Fail(consensus.ErrStopped)
	}
	if e.stopBack != nil {
		e.stopBack()
	}
	e.proc.Stop()
}

// hostServer answers the plugin's state machine calls.
type hostServer struct {
	consensuspb.UnimplementedHostServer
	e *Engine
}

func (h *hostServer) Calls(stream consensuspb.Host_CallsServer) error {
	return remote.ServeCalls(stream.Recv, stream.Send, h.e.hostCall)
}

func (e *Engine) hostCall(req *consensuspb.HostRequest) *consensuspb.HostResponse {
	resp := &consensuspb.HostResponse{Id: req.GetId()}
	e.handlers.Add(1)
	defer e.handlers.Done()
	g := e.group(consensus.GroupID(req.GetGroup()))
	if g == nil || e.closing.Load() {
		resp.Status = consensuspb.StatusOf(consensus.Errorf(consensus.CodeNotFound, "group %d is not started in the broker", req.GetGroup()))
		return resp
	}
	ctx := context.Background()
	var err error
	switch op := req.GetOp().(type) {
	case *consensuspb.HostRequest_Apply:
		var es []consensus.Entry
		es, err = op.Apply.Decode(g.unapplied.get, func() (storage.Log, error) { return e.store.Log(g.id) })
		if err == nil {
			if len(es) > 0 {
				g.unapplied.applied(es[len(es)-1].Index)
			}
			err = g.sm.Apply(ctx, es)
		}
	case *consensuspb.HostRequest_Snapshot:
		var s consensus.Snapshot
		if s, err = g.sm.Snapshot(ctx); err == nil {
			resp.Snapshot = &consensuspb.Snapshot{Index: s.Index, Data: s.Data}
		}
	case *consensuspb.HostRequest_Restore:
		err = g.sm.Restore(ctx, consensus.Snapshot{Index: op.Restore.GetIndex(), Data: op.Restore.GetData()})
	case *consensuspb.HostRequest_LeaderChanged:
		l := op.LeaderChanged
		leader, term := consensus.NodeID(l.GetLeader()), l.GetTerm()
		switch {
		case leader == e.node && l.GetLeading():
			g.setLeading(term)
		case leader != 0 && leader != e.node:
			g.revoke(term, term)
		case term > 0:
			// No leader known at term (a candidate, or a leader that
			// stepped down), or this node, not (or not yet: a group still
			// starting in the plugin) confirmed by the engine: it may
			// lead term later, never an earlier one. A step-down from
			// term comes as such before the vote it precedes.
			g.revoke(term, term-1)
		}
		g.sm.LeaderChanged(ctx, leader, term)
	case *consensuspb.HostRequest_StepDown:
		g.revoke(op.StepDown, op.StepDown)
	case *consensuspb.HostRequest_Leading:
		g.setLeading(op.Leading)
	default:
		err = consensus.Errorf(consensus.CodeInvalid, "unknown host call")
	}
	if err != nil {
		resp.Status = &consensuspb.Status{Code: uint32(consensus.CodeInternal), Message: err.Error()}
	}
	return resp
}

// Group is a group run by a consensus plugin.
type Group struct {
	e  *Engine
	id consensus.GroupID
	sm consensus.StateMachine

	// lead is the term this node leads at (0: none); floor the highest
	// term this node is known not to lead from now on. lead only ever
	// takes a term above floor.
	lead    atomic.Uint64
	leadMu  sync.Mutex
	floor   uint64
	stopped atomic.Bool

	unapplied unapplied
}

var _ consensus.Group = (*Group)(nil)

func (g *Group) setLeading(t uint64) {
	g.leadMu.Lock()
	defer g.leadMu.Unlock()
	if t > g.floor {
		g.lead.Store(t)
	}
}

// revoke clears the lead of any term up to clear and raises the floor to
// floor.
func (g *Group) revoke(clear, floor uint64) {
	g.leadMu.Lock()
	defer g.leadMu.Unlock()
	g.floor = max(g.floor, floor)
	if l := g.lead.Load(); l != 0 && (l <= clear || l <= g.floor) {
		g.lead.Store(0)
	}
}

// end marks the group stopped: it leads no term any more, and its calls
// answer CodeStopped.
func (g *Group) end() {
	g.stopped.Store(true)
	g.revoke(^uint64(0), ^uint64(0))
}

// ID implements consensus.Group.
func (g *Group) ID() consensus.GroupID { return g.id }

// Leading implements consensus.Group without crossing the process.
func (g *Group) Leading(term uint64) bool { return term != 0 && g.lead.Load() == term }

func (g *Group) check() error {
	if g.stopped.Load() {
		return consensus.ErrStopped
	}
	return g.e.check()
}

// call sends a Propose or ReadBarrier on the engine's stream.
func (g *Group) call(ctx context.Context, req *consensuspb.CallRequest) (*consensuspb.CallResponse, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &consensus.Error{Code: consensus.CodeTimeout, Err: err}
	}
	req.Group = uint64(g.id)
	if dl, ok := ctx.Deadline(); ok {
		req.TimeoutNs = max(int64(time.Until(dl)), 1)
	}
	resp, err := g.e.calls.CallCtx(ctx.Done(), req)
	switch {
	case err != nil:
		return nil, g.e.remoteErr(err)
	case resp == nil:
		return nil, &consensus.Error{Code: consensus.CodeTimeout, Err: ctx.Err()}
	}
	if err := resp.GetStatus().Err(); err != nil {
		return nil, err
	}
	return resp, nil
}

// Propose implements consensus.Group.
func (g *Group) Propose(ctx context.Context, data []byte) (uint64, error) {
	resp, err := g.call(ctx, &consensuspb.CallRequest{Op: &consensuspb.CallRequest_Propose{Propose: data}})
	if err != nil {
		return 0, err
	}
	return resp.GetIndex(), nil
}

// ReadBarrier implements consensus.Group.
func (g *Group) ReadBarrier(ctx context.Context, term uint64) error {
	_, err := g.call(ctx, &consensuspb.CallRequest{Op: &consensuspb.CallRequest_ReadBarrier{ReadBarrier: term}})
	return err
}

// Status implements consensus.Group: the plugin's answer, or (when it
// cannot answer) only the group and node.
func (g *Group) Status() consensus.Status {
	st := consensus.Status{Group: g.id, Node: g.e.node}
	if g.check() != nil {
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := g.e.rpc.GroupStatus(ctx, &consensuspb.GroupRequest{Group: uint64(g.id)})
	if err != nil || r.GetStatus().Err() != nil {
		return st
	}
	st.Role, st.Term, st.Leader = consensus.Role(r.GetRole()), r.GetTerm(), consensus.NodeID(r.GetLeader())
	st.Commit, st.Applied = r.GetCommit(), r.GetApplied()
	for _, v := range r.GetVoters() {
		st.Voters = append(st.Voters, consensus.NodeID(v))
	}
	for _, v := range r.GetLearners() {
		st.Learners = append(st.Learners, consensus.NodeID(v))
	}
	slices.Sort(st.Voters)
	return st
}

// TransferLeadership implements consensus.Group.
func (g *Group) TransferLeadership(ctx context.Context, to consensus.NodeID) error {
	return g.unary(func() (*consensuspb.Status, error) {
		return g.e.rpc.TransferLeadership(ctx, &consensuspb.TransferRequest{Group: uint64(g.id), To: uint64(to)})
	})
}

// ChangeMembership implements consensus.Group.
func (g *Group) ChangeMembership(ctx context.Context, c consensus.MembershipChange) error {
	return g.unary(func() (*consensuspb.Status, error) {
		return g.e.rpc.ChangeMembership(ctx, &consensuspb.MembershipRequest{Group: uint64(g.id), Type: uint32(c.Type), Node: uint64(c.Node)})
	})
}

// Compact implements consensus.Group.
func (g *Group) Compact(ctx context.Context) error {
	return g.unary(func() (*consensuspb.Status, error) {
		return g.e.rpc.Compact(ctx, &consensuspb.GroupRequest{Group: uint64(g.id)})
	})
}

func (g *Group) unary(call func() (*consensuspb.Status, error)) error {
	if err := g.check(); err != nil {
		return err
	}
	st, err := call()
	if err != nil {
		return g.e.remoteErr(err)
	}
	return st.Err()
}
