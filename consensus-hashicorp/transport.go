package hashicorp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/consensus/transport"
)

// The library's RPCs travel over the engine's shared transport (one gRPC
// stream per pair of brokers, for all groups) as opaque messages tagged by
// group: a request is [type][correlation id][body], its answer
// [type|msgResp][same id][body] (see codec.go) or [msgErr][id][error text], sent
// back on the other direction's stream. InstallSnapshot goes on the
// transport's snapshot RPC and its answer is that RPC's result.
//
// Heartbeats are marked so that the receiving side hands them to the
// library's heartbeat fast path at once, from the stream goroutine, instead
// of queueing them behind appends that wait for the disk. (On the sending
// side they share the peer's stream with appends: the shared transport has
// no priorities.)
const (
	msgAppend     byte = 1
	msgVote       byte = 2
	msgPreVote    byte = 3
	msgTimeoutNow byte = 4
	msgHeartbeat  byte = 5
	msgResp       byte = 0x40 // | request type: an answer
	msgErr        byte = 0x80 // an error answer; body is the text
)

func encodeMsg(typ byte, corr uint64, v any) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, typ)
	b = binary.AppendUvarint(b, corr)
	return appendBody(b, v)
}

func parseMsg(b []byte) (typ byte, corr uint64, body []byte, ok bool) {
	if len(b) < 2 {
		return 0, 0, nil, false
	}
	corr, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return 0, 0, nil, false
	}
	return b[0], corr, b[1+n:], true
}

// newRequest allocates the library's request type for a message type.
func newRequest(typ byte) any {
	switch typ {
	case msgAppend, msgHeartbeat:
		return &raft.AppendEntriesRequest{}
	case msgVote:
		return &raft.RequestVoteRequest{}
	case msgPreVote:
		return &raft.RequestPreVoteRequest{}
	case msgTimeoutNow:
		return &raft.TimeoutNowRequest{}
	}
	return nil
}

// addr is a node's raft.ServerAddress (and ServerID): its node id.
func addr(n consensus.NodeID) raft.ServerAddress {
	return raft.ServerAddress(strconv.FormatUint(uint64(n), 10))
}

func nodeOf(a raft.ServerAddress) (consensus.NodeID, error) {
	n, err := strconv.ParseUint(string(a), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("hashicorp: bad server address %q", a)
	}
	return consensus.NodeID(n), nil
}

// call is an outgoing request waiting for its answer.
type call struct {
	done chan callResult // buffered
}

type callResult struct {
	typ  byte
	body []byte
}

var (
	errUnreachable = errors.New("hashicorp: peer unreachable")
	errRPCTimeout  = errors.New("hashicorp: no answer in time")
	errGroupStop   = errors.New("hashicorp: group stopped")
)

// vtrans is one group's raft.Transport: a view of the engine's shared
// transport. Requests for the group are queued by the engine's handler and
// fed to the library, one at a time, by the group's serve goroutine.
type vtrans struct {
	e        *Engine
	g        *group
	consumer chan raft.RPC
	hb       atomic.Pointer[func(raft.RPC)]
	idle     idleAppends
	acks     acks        // for ReadBarrier: see read.go
	match    peerMarks   // per follower: its last index shared with this leader's (group.handOver)
	ready    atomic.Bool // the group watches the library: requests may flow

	mu    sync.Mutex
	queue []inbound
	wake  chan struct{}
}

type inbound struct {
	from consensus.NodeID
	typ  byte
	corr uint64
	body []byte
}

var (
	_ raft.Transport   = (*vtrans)(nil)
	_ raft.WithPreVote = (*vtrans)(nil)
	_ raft.WithClose   = (*vtrans)(nil)
)

func newVtrans(e *Engine, g *group) *vtrans {
	return &vtrans{e: e, g: g, consumer: make(chan raft.RPC), wake: make(chan struct{}, 1)}
}

func (t *vtrans) Consumer() <-chan raft.RPC                               { return t.consumer }
func (t *vtrans) LocalAddr() raft.ServerAddress                           { return addr(t.e.node) }
func (t *vtrans) EncodePeer(_ raft.ServerID, a raft.ServerAddress) []byte { return []byte(a) }
func (t *vtrans) DecodePeer(b []byte) raft.ServerAddress                  { return raft.ServerAddress(b) }
func (t *vtrans) SetHeartbeatHandler(cb func(raft.RPC))                   { t.hb.Store(&cb) }
func (t *vtrans) Close() error                                            { return nil }

// AppendEntriesPipeline is not supported: the library sends one append at a
// time per follower.
func (t *vtrans) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func isHeartbeat(a *raft.AppendEntriesRequest) bool {
	return a.Term != 0 && a.PrevLogEntry == 0 && a.PrevLogTerm == 0 && len(a.Entries) == 0 && a.LeaderCommitIndex == 0
}

func (t *vtrans) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	seq := t.acks.next()
	if isHeartbeat(args) {
		err := roundTrip(t, target, msgHeartbeat, args, resp, t.e.cfg.HeartbeatTimeout)
		t.idle.heartbeat(target, err == nil && resp.Success && resp.Term == args.Term)
		if err == nil && resp.Term == args.Term {
			t.acks.note(target, args.Term, seq)
		}
		return err
	}
	empty := len(args.Entries) == 0
	if empty {
		if r, ok := t.idle.lookup(target, args, t.e.cfg); ok {
			*resp = r
			return nil
		}
	}
	err := roundTrip(t, target, msgAppend, args, resp, t.e.cfg.RPCTimeout)
	if empty {
		t.idle.note(target, args, resp, err)
	}
	if err == nil && resp.Success && resp.Term == args.Term {
		last := args.PrevLogEntry
		if n := len(args.Entries); n > 0 {
			last = args.Entries[n-1].Index
		}
		t.match.note(target, args.Term, last)
	}
	if err == nil && resp.Term == args.Term {
		t.acks.note(target, args.Term, seq)
	}
	return err
}

// idleAppends answers, on the leader's side, the empty appends an idle
// leader sends every CommitTimeout (1x-2x) to each follower: when the same
// append (term, previous entry, commit index) was acknowledged by that
// follower less than HeartbeatTimeout ago, and the follower acknowledged a
// heartbeat less than LeaderLeaseTimeout/2 ago, its answer is reused
// instead of a round trip. Such an append carries nothing new to the
// follower (its commit index is the one acknowledged; heartbeats reset its
// election timer), so what changes is bounded: a follower that lost its
// state (a restarted group) hears the commit index up to HeartbeatTimeout
// later, and the leader's view of its contact with a follower is at most
// LeaderLeaseTimeout/2 more recent than the last heartbeat answered. A
// failed or refused heartbeat forgets the follower's entry. This halves the
// messages of an idle group.
type idleAppends struct {
	mu    sync.Mutex
	peers map[raft.ServerAddress]*idlePeer
}

type idlePeer struct {
	key  [4]uint64 // term, prev index, prev term, commit index
	resp raft.AppendEntriesResponse
	at   time.Time // when resp arrived (zero: none)
	hbOK time.Time // last heartbeat answered with success
}

func appendKey(a *raft.AppendEntriesRequest) [4]uint64 {
	return [4]uint64{a.Term, a.PrevLogEntry, a.PrevLogTerm, a.LeaderCommitIndex}
}

func (c *idleAppends) peer(target raft.ServerAddress) *idlePeer {
	if c.peers == nil {
		c.peers = make(map[raft.ServerAddress]*idlePeer)
	}
	p := c.peers[target]
	if p == nil {
		p = &idlePeer{}
		c.peers[target] = p
	}
	return p
}

func (c *idleAppends) heartbeat(target raft.ServerAddress, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peer(target)
	if ok {
		p.hbOK = time.Now()
	} else {
		*p = idlePeer{}
	}
}

func (c *idleAppends) lookup(target raft.ServerAddress, a *raft.AppendEntriesRequest, cfg Config) (raft.AppendEntriesResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peer(target)
	now := time.Now()
	if p.at.IsZero() || p.key != appendKey(a) || now.Sub(p.at) >= cfg.HeartbeatTimeout ||
		p.hbOK.IsZero() || now.Sub(p.hbOK) >= cfg.LeaderLeaseTimeout/2 {
		return raft.AppendEntriesResponse{}, false
	}
	return p.resp, true
}

func (c *idleAppends) note(target raft.ServerAddress, a *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peer(target)
	if err != nil || !resp.Success || resp.Term != a.Term {
		p.at = time.Time{}
		return
	}
	p.key, p.resp, p.at = appendKey(a), *resp, time.Now()
}

func (t *vtrans) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return roundTrip(t, target, msgVote, args, resp, t.e.cfg.ElectionTimeout)
}

func (t *vtrans) RequestPreVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return roundTrip(t, target, msgPreVote, args, resp, t.e.cfg.ElectionTimeout)
}

func (t *vtrans) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return roundTrip(t, target, msgTimeoutNow, args, resp, t.e.cfg.RPCTimeout)
}

// roundTrip sends req and decodes the answer into resp. The answer is
// decoded in this goroutine, into resp only once it arrived: the library
// may reuse resp after a timeout.
func roundTrip[Req, Resp any](t *vtrans, target raft.ServerAddress, typ byte, req *Req, resp *Resp, timeout time.Duration) error {
	to, err := nodeOf(target)
	if err != nil {
		return err
	}
	e := t.e
	corr := e.corr.Add(1)
	b, err := encodeMsg(typ, corr, req)
	if err != nil {
		return err
	}
	c := &call{done: make(chan callResult, 1)}
	e.calls.Store(corr, c)
	defer e.calls.Delete(corr)
	if !e.tr.Send(to, []transport.Message{{Group: t.g.id, Data: b}}) {
		return errUnreachable
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-c.done:
		if r.typ == msgErr {
			return fmt.Errorf("hashicorp: node %d: %s", to, r.body)
		}
		var got Resp
		if err := decodeBody(r.body, &got); err != nil {
			return fmt.Errorf("hashicorp: answer from node %d: %w", to, err)
		}
		*resp = got
		return nil
	case <-timer.C:
		return errRPCTimeout
	case <-t.g.stopC:
		return errGroupStop
	}
}

// InstallSnapshot sends the snapshot on the transport's snapshot RPC; the
// follower's handler returns once the library installed it (or refused).
func (t *vtrans) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest,
	resp *raft.InstallSnapshotResponse, data io.Reader) error {
	to, err := nodeOf(target)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(data, args.Size))
	if err != nil {
		return err
	}
	req, err := encodeMsg(0, 0, args)
	if err != nil {
		return err
	}
	b := binary.AppendUvarint(nil, uint64(len(req)))
	b = append(append(b, req...), body...)
	ctx, cancel := context.WithTimeout(context.Background(), max(t.e.cfg.RPCTimeout, 30*time.Second))
	defer cancel()
	stop := context.AfterFunc(t.g.ctx, cancel)
	defer stop()
	if err := t.e.tr.SendSnapshot(ctx, to, transport.Message{Group: t.g.id, Data: b}); err != nil {
		return err
	}
	*resp = raft.InstallSnapshotResponse{RPCHeader: raft.RPCHeader{ProtocolVersion: args.ProtocolVersion}, Term: args.Term, Success: true}
	return nil
}

// enqueue hands a request to the serve goroutine.
func (t *vtrans) enqueue(in inbound) {
	t.mu.Lock()
	t.queue = append(t.queue, in)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// serve feeds queued requests to the library one at a time and sends each
// answer back; the library handles its RPCs one at a time anyway.
func (t *vtrans) serve() {
	respCh := make(chan raft.RPCResponse, 1)
	for {
		select {
		case <-t.wake:
		case <-t.g.stopC:
			return
		}
		t.mu.Lock()
		q := t.queue
		t.queue = nil
		t.mu.Unlock()
		for _, in := range q {
			cmd := newRequest(in.typ)
			if cmd == nil {
				continue
			}
			if err := decodeBody(in.body, cmd); err != nil {
				t.e.reply(in, t.g.id, raft.RPCResponse{Error: err})
				continue
			}
			select {
			case t.consumer <- raft.RPC{Command: cmd, RespChan: respCh}:
			case <-t.g.stopC:
				return
			}
			select {
			case r := <-respCh:
				t.e.reply(in, t.g.id, r)
			case <-t.g.stopC:
				return
			}
		}
	}
}

// handler is the engine's transport.Handler.
type handler Engine

func (h *handler) HandleMessages(from consensus.NodeID, msgs []transport.Message) {
	e := (*Engine)(h)
	for _, m := range msgs {
		typ, corr, body, ok := parseMsg(m.Data)
		if !ok {
			continue
		}
		if typ&(msgResp|msgErr) != 0 {
			if c, ok := e.calls.LoadAndDelete(corr); ok {
				c.(*call).done <- callResult{typ: typ, body: body}
			}
			continue
		}
		in := inbound{from: from, typ: typ, corr: corr, body: body}
		g := e.group(m.Group)
		if g == nil || !g.vt.ready.Load() {
			e.reply(in, m.Group, raft.RPCResponse{Error: fmt.Errorf("group %d is not running on node %d", m.Group, e.node)})
			continue
		}
		if typ == msgHeartbeat {
			if hb := g.vt.hb.Load(); hb != nil {
				e.heartbeat(g, in, *hb)
				continue
			}
		}
		g.vt.enqueue(in)
	}
}

// heartbeat runs the library's heartbeat fast path in the stream goroutine,
// unless the heartbeat carries a new term: then the library persists the
// term (an fsync), which must not hold up the stream, so it is queued.
func (e *Engine) heartbeat(g *group, in inbound, hb func(raft.RPC)) {
	req := &raft.AppendEntriesRequest{}
	if err := decodeBody(in.body, req); err != nil {
		return
	}
	g.mu.Lock()
	term := g.term
	g.mu.Unlock()
	if req.Term != term {
		g.vt.enqueue(in)
		return
	}
	ch := make(chan raft.RPCResponse, 1)
	hb(raft.RPC{Command: req, RespChan: ch})
	select {
	case r := <-ch:
		e.reply(in, g.id, r)
	default: // the library is shutting down
	}
}

// reply sends the answer to an inbound request.
func (e *Engine) reply(in inbound, g consensus.GroupID, r raft.RPCResponse) {
	var b []byte
	if r.Error == nil {
		var err error
		if b, err = encodeMsg(msgResp|in.typ, in.corr, r.Response); err != nil {
			r.Error = err
		}
	}
	if r.Error != nil {
		b = append([]byte{msgErr}, binary.AppendUvarint(nil, in.corr)...)
		b = append(b, r.Error.Error()...)
	}
	e.tr.Send(in.from, []transport.Message{{Group: g, Data: b}})
}

func (h *handler) HandleSnapshot(ctx context.Context, from consensus.NodeID, m transport.Message) error {
	e := (*Engine)(h)
	g := e.group(m.Group)
	if g == nil || !g.vt.ready.Load() {
		return fmt.Errorf("hashicorp: group %d is not running on node %d", m.Group, e.node)
	}
	n, k := binary.Uvarint(m.Data)
	if k <= 0 || uint64(len(m.Data)-k) < n {
		return errors.New("hashicorp: bad snapshot message")
	}
	_, _, body, ok := parseMsg(m.Data[k : k+int(n)])
	if !ok {
		return errors.New("hashicorp: bad snapshot message")
	}
	req := &raft.InstallSnapshotRequest{}
	if err := decodeBody(body, req); err != nil {
		return fmt.Errorf("hashicorp: bad snapshot request: %w", err)
	}
	ch := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: req, Reader: bytes.NewReader(m.Data[k+int(n):]), RespChan: ch}
	select {
	case g.vt.consumer <- rpc:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stopC:
		return errGroupStop
	}
	var r raft.RPCResponse
	select {
	case r = <-ch:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stopC:
		return errGroupStop
	}
	if r.Error != nil {
		return r.Error
	}
	if resp, _ := r.Response.(*raft.InstallSnapshotResponse); resp == nil || !resp.Success {
		return fmt.Errorf("hashicorp: group %d: snapshot refused by node %d", m.Group, e.node)
	}
	return nil
}
