package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/internal/storagepb"
)

// Store is a storage.Store served by a plugin (see OpenStorage). Writes and
// reads of entries travel over two long-lived gRPC streams; the groups'
// bounds, terms and state are kept in this process (see index), so that
// only Write, Entries, Drop and Close cross the process boundary.
//
// Writes to one group are sent one at a time (the next waits for the
// previous one's answer), so that the host's index applies them in the
// store's order; writes to different groups run concurrently and share the
// store's fsync. The consensus engines never write one group from two
// goroutines at once, so this costs them nothing.
type Store struct {
	name string // for errors: "storage plugin wal"
	rpc  storagepb.StoreClient

	stats bool
	unary bool

	tailBudget int64 // bytes the tail caches may hold together (0: none)
	tailUsed   atomic.Int64
	writes     *CallStream[storagepb.WriteRequest, storagepb.WriteResponse]
	reads      *CallStream[storagepb.ReadRequest, storagepb.ReadResponse]
	cancel     context.CancelFunc // ends the streams

	mu     sync.RWMutex
	groups map[storage.GroupID]*group

	inflight sync.WaitGroup
	closing  atomic.Bool
	closeMu  sync.Mutex
	closed   bool
	failErr  atomic.Pointer[error] // set once: every later call fails with it
	failed   chan struct{}         // closed when failErr is set
	failOnce sync.Once
	failedAt atomic.Pointer[time.Time]
	// failLinger is how long calls that fail because the plugin is gone
	// are held (see linger).
	failLinger time.Duration

	// proc is the plugin process (nil: none, as in the shim mode).
	proc Process
}

// Process is what a Store knows of the process that serves it.
type Process interface {
	// Exited is closed once the process has ended.
	Exited() <-chan struct{}
	// ExitErr says how the process ended (nil while it runs).
	ExitErr() error
	Pid() int
	// Stop ends the process, or whatever serves the store.
	Stop()
}

// Options are a Store's settings.
type Options struct {
	// Name is for errors: "storage plugin wal".
	Name  string
	Unary bool
	// FailLinger: see plugins.StorageOptions (0: none).
	FailLinger time.Duration
	// TailCache: bytes of the groups' newest entries kept here (0: none).
	TailCache int64
	// Stats says whether the store keeps storage.Stats.
	Stats bool
}

// Open connects to a store the server has open, loads every group's index
// and, if proc is a process, fails the store when it ends. On error, proc
// is left to the caller.
func Open(ctx context.Context, rpc storagepb.StoreClient, proc Process, o Options) (*Store, error) {
	s := &Store{name: o.Name, rpc: rpc, unary: o.Unary, stats: o.Stats, proc: proc, groups: make(map[storage.GroupID]*group),
		tailBudget: o.TailCache, failLinger: o.FailLinger, failed: make(chan struct{})}
	if err := s.open(ctx); err != nil {
		if s.cancel != nil {
			s.cancel()
		}
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}
	if proc != nil && proc.Exited() != nil {
		go s.watch()
	}
	return s, nil
}

// watch fails the store when the plugin process ends on its own.
func (s *Store) watch() {
	<-s.proc.Exited()
	if s.closing.Load() {
		return
	}
	err := s.fail(s.proc.ExitErr())
	s.writes.Fail(err)
	s.reads.Fail(err)
}

// Done is closed when the store has failed for good: the plugin process
// ended, or the connection to it broke. Err then says how.
func (s *Store) Done() <-chan struct{} { return s.failed }

// Err is the error the store failed with (nil while it works). When the
// plugin process has ended (or ends within a second of the failure, as a
// killed plugin does: its connection breaks first) it says how the process
// ended.
func (s *Store) Err() error {
	e := s.failErr.Load()
	if e == nil {
		return nil
	}
	if s.proc == nil || s.proc.Exited() == nil {
		return *e
	}
	select {
	case <-s.proc.Exited():
	case <-time.After(time.Second):
		return *e
	}
	perr := s.proc.ExitErr()
	if strings.Contains((*e).Error(), perr.Error()) {
		return *e
	}
	return storage.Errorf(storage.CodeFailed, "%s: %v", s.name, perr)
}

// Pid is the plugin's process id (0 in process).
func (s *Store) Pid() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid()
}

var (
	_ storage.Store = (*Store)(nil)
	_ storage.Stats = (*Store)(nil)
)

// group is the host side of one group: its index, and the lock that
// orders its writes.
type group struct {
	wmu  sync.Mutex // held across a remote Write or Drop of the group
	mu   sync.RWMutex
	x    index
	tail tailCache
}

// Tail cache limits: per group, and for the whole store (past it, a group
// that writes keeps only its last smallTail bytes).
const (
	tailPerGroup = 1 << 20
	smallTail    = 64 << 10
)

// open connects the streams and loads every group's index.
func (s *Store) open(ctx context.Context) error {
	sctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ws, err := s.rpc.Write(sctx)
	if err != nil {
		return err
	}
	s.writes = NewCallStream(ws.Send, onBreak(s, ws.Recv),
		func(r *storagepb.WriteRequest, id uint64) { r.Id = id },
		func(r *storagepb.WriteResponse) uint64 { return r.GetId() })
	rs, err := s.rpc.Read(sctx)
	if err != nil {
		return err
	}
	s.reads = NewCallStream(rs.Send, onBreak(s, rs.Recv),
		func(r *storagepb.ReadRequest, id uint64) { r.Id = id },
		func(r *storagepb.ReadResponse) uint64 { return r.GetId() })
	meta, err := s.rpc.Meta(ctx, &storagepb.Empty{})
	if err != nil {
		return err
	}
	for {
		m, err := meta.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("loading the groups: %w", err)
		}
		s.groups[storage.GroupID(m.GetGroup())] = &group{x: indexOf(m)}
	}
}

// onBreak wraps a stream's receive: a stream that breaks while the store is
// open means the plugin is gone, and fails the store at once (not at the
// next call), so that the broker learns it from Done.
func onBreak[Resp any](s *Store, recv func() (*Resp, error)) func() (*Resp, error) {
	return func() (*Resp, error) {
		r, err := recv()
		if err != nil && !s.closing.Load() {
			s.fail(fmt.Errorf("connection to the plugin lost: %w", err))
		}
		return r, err
	}
}

// check answers an error once the store is closed or has failed.
func (s *Store) check() error {
	if e := s.failErr.Load(); e != nil {
		s.linger()
		return *e
	}
	if s.closing.Load() {
		return storage.ErrClosed
	}
	return nil
}

// fail latches err: the store is unusable from now on.
func (s *Store) fail(err error) error {
	e := storage.Errorf(storage.CodeFailed, "%s: %v", s.name, err)
	if s.failErr.CompareAndSwap(nil, &e) {
		now := time.Now()
		s.failedAt.Store(&now)
	}
	s.failOnce.Do(func() { close(s.failed) })
	return *s.failErr.Load()
}

// checkRead is check for the read side of the logs: after a failure they
// go on answering from the host's index (what the store held when it
// failed) until Close, so that a Raft library that treats a storage error
// as fatal (etcd raft panics) does not bring the broker down before it
// exits, even once the failed store was closed; writes and reads of
// entries the host does not hold fail.
func (s *Store) checkRead() error {
	if s.closing.Load() && s.failErr.Load() == nil {
		return storage.ErrClosed
	}
	return nil
}

// remoteErr turns the error of a call into a storage error: a transport
// error (the plugin is gone) fails the store for good.
func (s *Store) remoteErr(err error) error {
	if err == nil {
		return nil
	}
	defer s.linger()
	if e := s.failErr.Load(); e != nil {
		return *e
	}
	if s.proc != nil {
		if perr := s.proc.ExitErr(); perr != nil {
			return s.fail(perr)
		}
	}
	return s.fail(err)
}

// linger holds a call that fails because the plugin is gone until
// FailLinger has passed since the failure. The broker exits in that time
// (serve watches Done), and the Raft libraries, which treat any storage
// error as fatal and panic (etcd raft on a read, hashicorp raft on a read
// while starting a group or on a term it cannot save), do not see one
// before it has.
func (s *Store) linger() {
	if s.failLinger <= 0 {
		return
	}
	if at := s.failedAt.Load(); at != nil {
		time.Sleep(time.Until(at.Add(s.failLinger)))
	}
}

// group returns g's host side, loading its index from the plugin the
// first time (a group the plugin did not list at open).
func (s *Store) group(g storage.GroupID) (*group, error) {
	s.mu.RLock()
	gr := s.groups[g]
	s.mu.RUnlock()
	if gr != nil {
		return gr, nil
	}
	m, err := s.rpc.Describe(context.Background(), &storagepb.GroupRequest{Group: uint64(g)})
	if err != nil {
		return nil, s.remoteErr(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gr = s.groups[g]; gr == nil { // a concurrent caller may have won
		gr = &group{x: indexOf(m)}
		s.groups[g] = gr
	}
	return gr, nil
}

// Write sends ws to the plugin and, once it answers, updates the groups'
// indexes. The call is not abandoned when ctx ends: the host's index must
// learn whether the store applied the batch.
func (s *Store) Write(ctx context.Context, ws []storage.GroupWrite, sync bool) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.inflight.Done()
	if len(ws) == 0 && !sync {
		return nil
	}
	// Lock the groups in ascending order (no two writers wait on each other).
	ids := make([]storage.GroupID, 0, len(ws))
	for i := range ws {
		ids = append(ids, ws[i].Group)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	grs := make(map[storage.GroupID]*group, len(ids))
	for _, g := range ids {
		gr, err := s.group(g)
		if err != nil {
			return err
		}
		gr.wmu.Lock()
		defer gr.wmu.Unlock()
		grs[g] = gr
	}
	if err := storage.CheckWrites(ws, func(g storage.GroupID) (uint64, uint64) {
		gr := grs[g]
		gr.mu.RLock()
		defer gr.mu.RUnlock()
		return gr.x.first, gr.x.last
	}); err != nil {
		return err
	}
	req := &storagepb.WriteRequest{Sync: sync, Writes: make([]*storagepb.GroupWrite, len(ws))}
	var views [][]storage.Entry // for the tail cache: entries aliasing what was sent
	if s.tailBudget > 0 {
		views = make([][]storage.Entry, len(ws))
	}
	for i := range ws {
		w := &ws[i]
		pw := &storagepb.GroupWrite{Group: uint64(w.Group), TruncBefore: w.TruncBefore}
		if views != nil {
			pw.Entries, views[i] = storagepb.PackEntriesViews(w.Entries)
		} else {
			pw.Entries = storagepb.PackEntries(w.Entries)
		}
		if w.Reset != nil {
			pw.Reset_, pw.ResetIndex, pw.ResetTerm = true, w.Reset.Index, w.Reset.Term
		}
		if w.State != nil {
			pw.HasState, pw.State = true, w.State
		}
		req.Writes[i] = pw
	}
	var resp *storagepb.WriteResponse
	var err error
	if s.unary {
		resp, err = s.rpc.WriteOnce(context.Background(), req)
	} else {
		resp, err = s.writes.Call(req)
	}
	if err != nil {
		return s.remoteErr(err)
	}
	if err := resp.GetStatus().Err(); err != nil {
		switch storage.CodeOf(err) {
		case storage.CodeInvalid, storage.CodeTooLarge, storage.CodeClosed:
			// Refused whole: nothing was applied.
		default:
			// The store may have applied part of it: this index can no
			// longer be trusted.
			err = s.fail(err)
			s.linger()
			return err
		}
		return err
	}
	for i := range ws {
		gr := grs[ws[i].Group]
		gr.mu.Lock()
		gr.x.apply(&ws[i])
		if s.tailBudget > 0 {
			limit := tailPerGroup
			if s.tailUsed.Load() > s.tailBudget {
				limit = smallTail
			}
			s.tailUsed.Add(int64(gr.tail.apply(&gr.x, &ws[i], views[i], limit)))
		}
		gr.mu.Unlock()
	}
	return nil
}

func (s *Store) begin() error {
	if err := s.check(); err != nil {
		return err
	}
	s.inflight.Add(1)
	if err := s.check(); err != nil {
		s.inflight.Done()
		return err
	}
	return nil
}

// Log returns the read side of group g.
func (s *Store) Log(g storage.GroupID) (storage.Log, error) {
	if err := s.checkRead(); err != nil {
		return nil, err
	}
	gr, err := s.group(g)
	if err != nil {
		return nil, err
	}
	return &log{s: s, id: g, g: gr}, nil
}

// Groups lists the groups holding entries or state, from the indexes: every
// such group was listed by the plugin at open or written since.
func (s *Store) Groups(context.Context) ([]storage.GroupID, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ids []storage.GroupID
	for id, gr := range s.groups {
		gr.mu.RLock()
		holds := gr.x.last >= gr.x.first || gr.x.state != nil
		gr.mu.RUnlock()
		if holds {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Drop deletes group g in the plugin, then empties its index.
func (s *Store) Drop(ctx context.Context, g storage.GroupID) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.inflight.Done()
	gr, err := s.group(g)
	if err != nil {
		return err
	}
	gr.wmu.Lock()
	defer gr.wmu.Unlock()
	st, err := s.rpc.Drop(ctx, &storagepb.GroupRequest{Group: uint64(g)})
	if err != nil {
		return s.remoteErr(err)
	}
	if err := st.Err(); err != nil && storage.CodeOf(err) != storage.CodeNotFound {
		return err
	}
	gr.mu.Lock()
	gr.x = emptyIndex()
	s.tailUsed.Add(-int64(gr.tail.bytes))
	gr.tail.dropFront(len(gr.tail.ents))
	gr.mu.Unlock()
	return nil
}

// Syncs asks the plugin how many fsyncs its store has done (0 if it keeps
// no stats or cannot answer).
func (s *Store) Syncs() uint64 {
	if !s.stats || s.check() != nil {
		return 0
	}
	r, err := s.rpc.Stats(context.Background(), &storagepb.Empty{})
	if err != nil || r.GetStatus().Err() != nil {
		return 0
	}
	return r.GetSyncs()
}

// Close waits for in-flight writes, closes the store in the plugin and
// stops the plugin process.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.closing.Store(true)
	if s.failErr.Load() == nil { // calls held by linger are not waited for
		s.inflight.Wait()
	}
	var err error
	if s.failErr.Load() == nil {
		st, cerr := s.rpc.Close(context.Background(), &storagepb.Empty{})
		if cerr != nil {
			err = fmt.Errorf("%s: close: %w", s.name, cerr)
		} else {
			err = st.Err()
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.proc != nil {
		s.proc.Stop()
	}
	return err
}

// log is the read side of one group.
type log struct {
	s  *Store
	id storage.GroupID
	g  *group
}

func (l *log) read(f func(x *index) error) error {
	if err := l.s.checkRead(); err != nil {
		return err
	}
	l.g.mu.RLock()
	defer l.g.mu.RUnlock()
	return f(&l.g.x)
}

func (l *log) FirstIndex() (i uint64, err error) {
	err = l.read(func(x *index) error { i = x.first; return nil })
	return i, err
}

func (l *log) LastIndex() (i uint64, err error) {
	err = l.read(func(x *index) error { i = x.last; return nil })
	return i, err
}

func (l *log) Term(i uint64) (t uint64, err error) {
	err = l.read(func(x *index) (err error) { t, err = x.term(i); return err })
	return t, err
}

func (l *log) State() (st []byte, err error) {
	err = l.read(func(x *index) error {
		if x.state != nil {
			st = append(make([]byte, 0, len(x.state)), x.state...)
		}
		return nil
	})
	return st, err
}

// Entries reads from the plugin. The entries returned alias one buffer of
// their own, which the caller owns.
func (l *log) Entries(lo, hi, maxBytes uint64) ([]storage.Entry, error) {
	if err := l.s.checkRead(); err != nil {
		return nil, err
	}
	l.g.mu.RLock()
	es, ok := l.g.tail.read(lo, hi, maxBytes)
	l.g.mu.RUnlock()
	if ok {
		return es, nil
	}
	if err := l.s.check(); err != nil {
		return nil, err
	}
	req := &storagepb.ReadRequest{Group: uint64(l.id), Lo: lo, Hi: hi, MaxBytes: maxBytes}
	var resp *storagepb.ReadResponse
	var err error
	if l.s.unary {
		resp, err = l.s.rpc.ReadOnce(context.Background(), req)
	} else {
		resp, err = l.s.reads.Call(req)
	}
	if err != nil {
		return nil, l.s.remoteErr(err)
	}
	if err := resp.GetStatus().Err(); err != nil {
		return nil, err
	}
	es, err = storagepb.UnpackEntries(resp.GetEntries())
	if err != nil {
		return nil, storage.Errorf(storage.CodeCorrupt, "%s: %v", l.s.name, err)
	}
	if len(es) > 0 && (!l.known(&es[0]) || !l.known(&es[len(es)-1])) {
		// The read saw a write the plugin has applied and this index has
		// not yet: wait for that write to finish, so that no later call
		// reads an older state than this one returned.
		l.g.wmu.Lock()
		l.g.wmu.Unlock() //nolint:staticcheck // only waiting
	}
	return es, nil
}

// known reports whether the index holds e's index with e's term.
func (l *log) known(e *storage.Entry) bool {
	l.g.mu.RLock()
	defer l.g.mu.RUnlock()
	t, err := l.g.x.term(e.Index)
	return err == nil && t == e.Term
}
