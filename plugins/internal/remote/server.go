package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/internal/storagepb"
)

// storeServer serves one storage.Store over the storage protocol. The store
// is created by Open; every call before it answers code closed.
type storeServer struct {
	storagepb.UnimplementedStoreServer
	factory storage.Factory
	log     *slog.Logger

	mu    sync.Mutex
	store storage.Store
	// borrowed: the store is the host's (served to a consensus plugin),
	// opened before and closed after; Open and Close leave it alone.
	borrowed bool
	// onWrite, if set, sees every write the store applied, its entries'
	// data in buffers of their own (the received message's).
	onWrite func([]storage.GroupWrite)
}

// Server serves a store over the storage protocol.
type Server = storeServer

// NewServer returns the server of a storage plugin: Open creates the
// store with f.
func NewServer(f storage.Factory, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &storeServer{factory: f, log: log}
}

// NewBorrowedServer serves st, which the caller opened and will close: a
// broker's store, served to its consensus plugin. onWrite (if not nil) is
// called with every write the store applied, in each group's order; the
// entries' data are the received message's and may be kept.
func NewBorrowedServer(st storage.Store, log *slog.Logger, onWrite func([]storage.GroupWrite)) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &storeServer{store: st, log: log, borrowed: true, onWrite: onWrite}
}

var errNotOpen = storage.Errorf(storage.CodeClosed, "the store is not open")

func (s *storeServer) open() (storage.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil, errNotOpen
	}
	return s.store, nil
}

// config decodes and validates the request's config section.
func (s *storeServer) config(req *storagepb.ConfigRequest) (component.Config, error) {
	cfg, problems := decodeConfig("storage", s.factory, req.GetType(), req.GetConfigJson())
	if problems != "" {
		return nil, storage.Errorf(storage.CodeInvalid, "%s", problems)
	}
	return cfg, nil
}

// componentFactory is what decodeConfig needs of a storage or consensus
// factory.
type componentFactory interface {
	Type() component.Type
	DefaultConfig() component.Config
}

// decodeConfig decodes a plugin's config section (JSON, as the broker sent
// it for a component of kind and type typ) over f's defaults with the
// broker's decoder, and validates it. It returns the problems one a line,
// without the "invalid configuration" heading (the broker words its own),
// or "".
func decodeConfig(kind string, f componentFactory, typ string, section []byte) (component.Config, string) {
	if typ != "" && component.Type(typ) != f.Type() {
		return nil, fmt.Sprintf("this plugin serves %s type %q, not %q", kind, f.Type(), typ)
	}
	var m map[string]any
	if len(section) > 0 {
		// Numbers stay json.Number, so that integers keep their precision.
		d := json.NewDecoder(bytes.NewReader(section))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return nil, fmt.Sprintf("config section: %v", err)
		}
	}
	cfg := f.DefaultConfig()
	err := config.DecodeSection(kind, m, cfg)
	if err == nil {
		return cfg, ""
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		lines := make([]string, len(ce.Problems))
		for i, p := range ce.Problems {
			lines[i] = p.Error()
		}
		return nil, strings.Join(lines, "\n")
	}
	return nil, err.Error()
}

func (s *storeServer) Validate(_ context.Context, req *storagepb.ConfigRequest) (*storagepb.Status, error) {
	_, err := s.config(req)
	return storagepb.StatusOf(err), nil
}

func (s *storeServer) Open(ctx context.Context, req *storagepb.ConfigRequest) (*storagepb.OpenResponse, error) {
	if s.borrowed {
		_, stats := s.store.(storage.Stats)
		return &storagepb.OpenResponse{Stats: stats}, nil
	}
	cfg, err := s.config(req)
	if err != nil {
		return &storagepb.OpenResponse{Status: storagepb.StatusOf(err)}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store != nil {
		return &storagepb.OpenResponse{Status: storagepb.StatusOf(storage.Errorf(storage.CodeInvalid, "the store is already open"))}, nil
	}
	st, err := s.factory.Create(ctx, component.Settings{Logger: s.log, DataDir: req.GetDataDir()}, cfg)
	if err != nil {
		if storage.CodeOf(err) == storage.CodeInternal {
			err = storage.Errorf(storage.CodeInternal, "%s: open %s: %v", s.factory.Type(), req.GetDataDir(), err)
		}
		return &storagepb.OpenResponse{Status: storagepb.StatusOf(err)}, nil
	}
	s.store = st
	_, stats := st.(storage.Stats)
	s.log.Info("store open", "type", s.factory.Type(), "dir", req.GetDataDir())
	return &storagepb.OpenResponse{Stats: stats}, nil
}

// describe reads one group's bounds, term runs and state.
func describe(st storage.Store, g storage.GroupID) (*storagepb.GroupMeta, error) {
	l, err := st.Log(g)
	if err != nil {
		return nil, err
	}
	first, err := l.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := l.LastIndex()
	if err != nil {
		return nil, err
	}
	m := &storagepb.GroupMeta{Group: uint64(g), First: first, Last: last}
	prev := uint64(0)
	for i := first - 1; i <= last && i+1 != 0; i++ {
		if i == 0 && first == 1 {
			continue // Term(0) is 0 by definition
		}
		t, err := l.Term(i)
		if err != nil {
			return nil, err
		}
		if len(m.TermRuns) == 0 || t != prev {
			m.TermRuns = append(m.TermRuns, i, t)
			prev = t
		}
	}
	st2, err := l.State()
	if err != nil {
		return nil, err
	}
	m.HasState, m.State = st2 != nil, st2
	return m, nil
}

func (s *storeServer) Meta(_ *storagepb.Empty, stream storagepb.Store_MetaServer) error {
	st, err := s.open()
	if err != nil {
		return err
	}
	ids, err := st.Groups(stream.Context())
	if err != nil {
		return err
	}
	for _, g := range ids {
		m, err := describe(st, g)
		if err != nil {
			return fmt.Errorf("group %d: %w", g, err)
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func (s *storeServer) Describe(_ context.Context, req *storagepb.GroupRequest) (*storagepb.GroupMeta, error) {
	st, err := s.open()
	if err != nil {
		return nil, err
	}
	return describe(st, storage.GroupID(req.GetGroup()))
}

// groupWrites decodes a request's writes; entries alias the request's
// buffers, which the store copies (the contract lets callers reuse theirs).
func groupWrites(req *storagepb.WriteRequest) ([]storage.GroupWrite, error) {
	ws := make([]storage.GroupWrite, len(req.GetWrites()))
	for i, w := range req.GetWrites() {
		es, err := storagepb.UnpackEntries(w.GetEntries())
		if err != nil {
			return nil, storage.Errorf(storage.CodeInvalid, "group %d: %v", w.GetGroup(), err)
		}
		ws[i] = storage.GroupWrite{Group: storage.GroupID(w.GetGroup()), Entries: es, TruncBefore: w.GetTruncBefore()}
		if w.GetReset_() {
			ws[i].Reset = &storage.Position{Index: w.GetResetIndex(), Term: w.GetResetTerm()}
		}
		if w.GetHasState() {
			ws[i].State = w.GetState()
			if ws[i].State == nil {
				ws[i].State = []byte{}
			}
		}
	}
	return ws, nil
}

func (s *storeServer) write(ctx context.Context, req *storagepb.WriteRequest) *storagepb.WriteResponse {
	resp := &storagepb.WriteResponse{Id: req.GetId()}
	st, err := s.open()
	if err == nil {
		var ws []storage.GroupWrite
		if ws, err = groupWrites(req); err == nil {
			if err = st.Write(ctx, ws, req.GetSync()); err == nil && s.onWrite != nil {
				s.onWrite(ws)
			}
		}
	}
	resp.Status = storagepb.StatusOf(err)
	return resp
}

func (s *storeServer) read(req *storagepb.ReadRequest) *storagepb.ReadResponse {
	resp := &storagepb.ReadResponse{Id: req.GetId()}
	st, err := s.open()
	if err == nil {
		var l storage.Log
		if l, err = st.Log(storage.GroupID(req.GetGroup())); err == nil {
			var es []storage.Entry
			if es, err = l.Entries(req.GetLo(), req.GetHi(), req.GetMaxBytes()); err == nil {
				resp.Entries = storagepb.PackEntries(es)
			}
		}
	}
	resp.Status = storagepb.StatusOf(err)
	return resp
}

func (s *storeServer) WriteOnce(ctx context.Context, req *storagepb.WriteRequest) (*storagepb.WriteResponse, error) {
	return s.write(ctx, req), nil
}

func (s *storeServer) ReadOnce(_ context.Context, req *storagepb.ReadRequest) (*storagepb.ReadResponse, error) {
	return s.read(req), nil
}

// Write serves a stream of writes: each is handled in a goroutine of its
// own, so that concurrent writes share the store's fsync, and answered by
// id as soon as it is done.
func (s *storeServer) Write(stream storagepb.Store_WriteServer) error {
	return ServeCalls(stream.Recv, stream.Send, func(req *storagepb.WriteRequest) *storagepb.WriteResponse {
		return s.write(stream.Context(), req)
	})
}

// Read serves a stream of reads, each in a goroutine of its own.
func (s *storeServer) Read(stream storagepb.Store_ReadServer) error {
	return ServeCalls(stream.Recv, stream.Send, s.read)
}

// ServeCalls answers each request of a stream in a goroutine of its own,
// sending the answers one at a time, until the host ends the stream.
func ServeCalls[Req, Resp any](recv func() (*Req, error), send func(*Resp) error, handle func(*Req) *Resp) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	var sendErr error
	for {
		req, err := recv()
		if err != nil {
			return ignoreEnd(err)
		}
		wg.Go(func() {
			resp := handle(req)
			mu.Lock()
			defer mu.Unlock()
			if sendErr == nil {
				sendErr = send(resp)
			}
		})
	}
}

func (s *storeServer) Drop(ctx context.Context, req *storagepb.GroupRequest) (*storagepb.Status, error) {
	st, err := s.open()
	if err == nil {
		err = st.Drop(ctx, storage.GroupID(req.GetGroup()))
	}
	return storagepb.StatusOf(err), nil
}

func (s *storeServer) Stats(context.Context, *storagepb.Empty) (*storagepb.StatsResponse, error) {
	st, err := s.open()
	if err != nil {
		return &storagepb.StatsResponse{Status: storagepb.StatusOf(err)}, nil
	}
	ss, ok := st.(storage.Stats)
	if !ok {
		return &storagepb.StatsResponse{Status: storagepb.StatusOf(storage.Errorf(storage.CodeInvalid, "the store keeps no stats"))}, nil
	}
	return &storagepb.StatsResponse{Syncs: ss.Syncs()}, nil
}

func (s *storeServer) Close(context.Context, *storagepb.Empty) (*storagepb.Status, error) {
	return storagepb.StatusOf(s.CloseStore()), nil
}

// CloseStore closes the store (not a borrowed one); later calls answer
// code closed.
func (s *storeServer) CloseStore() error {
	s.mu.Lock()
	st := s.store
	s.mu.Unlock()
	if st == nil || s.borrowed {
		return nil
	}
	err := st.Close()
	if err == nil || storage.CodeOf(err) == storage.CodeClosed {
		s.log.Info("store closed")
	} else {
		s.log.Error("closing the store", "err", err)
	}
	return err
}

// ignoreEnd treats the end of a stream (the host closed its side, or went
// away) as a normal end.
func ignoreEnd(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
		return nil
	}
	return err
}
