// Package transport is the node-to-node transport shared by the consensus
// backends: one gRPC connection per pair of brokers, one long-lived stream per
// direction carrying batches of opaque messages for all groups, and
// snapshots on RPCs of their own.
//
// # The contract
//
//  1. Each node creates one Transport with its node id, a listen address and
//     a Handler, then names its peers with SetPeer (again to change an
//     address).
//  2. Each node dials each peer for its own outgoing traffic: the stream from
//     A to B carries only A's messages to B, so a proxy between them can cut
//     one direction only. The first frame of a stream names the sender.
//  3. Send never blocks: it queues the messages for the peer's sender
//     goroutine, which sends everything queued as one batch. It returns false
//     when the messages were dropped (unknown peer, queue full, or the last
//     connection attempt failed); the caller then tells its Raft the peer is
//     unreachable. Messages accepted by Send may still be lost (a connection
//     that breaks); they are never reordered or duplicated.
//  4. On the receiving side, HandleMessages gets each peer's messages in the
//     order that peer sent them, from one goroutine per incoming stream. It
//     must not block for long: it holds up that peer's stream.
//  5. SendSnapshot blocks until the peer's HandleSnapshot returned (its error
//     comes back as the error of SendSnapshot) or ctx ends.
//  6. Close stops the listener, every stream and every goroutine; once it has
//     returned the Handler is not called again.
package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/consensus/transport/transportpb"
	"github.com/chronik-go/chronik/core/storage"
)

// Message is one backend message for one group; Data is opaque here.
type Message struct {
	Group storage.GroupID
	Data  []byte
}

// Handler receives what peers send. See the package doc for its rules.
type Handler interface {
	// HandleMessages receives a batch from one peer, in that peer's send
	// order. It must not block for long and must not keep msgs' slice (the
	// Data slices are the handler's).
	HandleMessages(from consensus.NodeID, msgs []Message)
	// HandleSnapshot receives one snapshot message; its error is returned to
	// the sender.
	HandleSnapshot(ctx context.Context, from consensus.NodeID, m Message) error
}

// Config configures a Transport. Zero values take the defaults noted.
type Config struct {
	Node    consensus.NodeID // this node; required
	Listen  string           // host:port; port 0 picks one
	Handler Handler          // required
	Logger  *slog.Logger     // nil: discard

	// QueueSize bounds the messages queued per peer (default 16384).
	QueueSize int
	// QueueBytes bounds the bytes queued per peer (default 256 MiB).
	QueueBytes int
	// MaxMsgSize is the gRPC message limit both ways (default 128 MiB); a
	// batch larger than this is split.
	MaxMsgSize int
	// BackoffMin and BackoffMax bound the wait between connection attempts
	// (defaults 50ms and 1s).
	BackoffMin, BackoffMax time.Duration
	// Keepalive is the gRPC keepalive ping interval on idle connections
	// (default 10s, the gRPC minimum).
	Keepalive time.Duration

	_ struct{}
}

func (c *Config) withDefaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 16384
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 256 << 20
	}
	if c.MaxMsgSize <= 0 {
		c.MaxMsgSize = 128 << 20
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 50 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(time.Second, c.BackoffMin)
	}
	if c.Keepalive <= 0 {
		c.Keepalive = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrClosed is returned by calls on a closed Transport.
var ErrClosed = errors.New("transport: closed")

// ErrUnknownPeer is returned by SendSnapshot for a peer never set.
var ErrUnknownPeer = errors.New("transport: unknown peer")

// Transport is one node's endpoint. It is safe for concurrent use.
type Transport struct {
	cfg    Config
	log    *slog.Logger
	lis    net.Listener
	srv    *grpc.Server
	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // sender goroutines and Serve

	mu     sync.Mutex
	peers  map[consensus.NodeID]*peer
	closed bool
}

// New listens on cfg.Listen and starts serving.
func New(cfg Config) (*Transport, error) {
	cfg.withDefaults()
	if cfg.Node == 0 {
		return nil, errors.New("transport: node id 0")
	}
	if cfg.Handler == nil {
		return nil, errors.New("transport: nil handler")
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("transport: listen %s: %w", cfg.Listen, err)
	}
	t := &Transport{
		cfg:   cfg,
		log:   cfg.Logger.With("node", uint64(cfg.Node)),
		lis:   lis,
		peers: make(map[consensus.NodeID]*peer),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.srv = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxMsgSize),
		grpc.MaxSendMsgSize(cfg.MaxMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.Keepalive / 2, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: cfg.Keepalive, Timeout: cfg.Keepalive}),
		grpc.WaitForHandlers(true),
	)
	transportpb.RegisterTransportServer(t.srv, &server{t: t})
	t.wg.Go(func() {
		if err := t.srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.log.Error("transport: serve", "err", err)
		}
	})
	return t, nil
}

// Addr is the address the transport listens on.
func (t *Transport) Addr() string { return t.lis.Addr().String() }

// SetPeer sets (or changes) the address of peer id. A changed address closes
// the current connection; the sender reconnects to the new one.
func (t *Transport) SetPeer(id consensus.NodeID, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || id == t.cfg.Node {
		return
	}
	if p, ok := t.peers[id]; ok {
		p.setAddr(addr)
		return
	}
	p := newPeer(t, id, addr)
	t.peers[id] = p
	t.wg.Go(p.run)
}

// Peers lists the peers set so far.
func (t *Transport) Peers() []consensus.NodeID {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]consensus.NodeID, 0, len(t.peers))
	for id := range t.peers {
		ids = append(ids, id)
	}
	return ids
}

func (t *Transport) peer(id consensus.NodeID) *peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peers[id]
}

// Send queues msgs for peer to without blocking. False means they were
// dropped; see the package doc.
func (t *Transport) Send(to consensus.NodeID, msgs []Message) bool {
	p := t.peer(to)
	if p == nil {
		return false
	}
	return p.enqueue(msgs)
}

// SendSnapshot delivers m to peer to on its own RPC and returns the peer
// handler's error.
func (t *Transport) SendSnapshot(ctx context.Context, to consensus.NodeID, m Message) error {
	p := t.peer(to)
	if p == nil {
		if t.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("%w %d", ErrUnknownPeer, to)
	}
	c, err := p.client()
	if err != nil {
		return err
	}
	_, err = c.Snapshot(ctx, &transportpb.SnapshotRequest{
		From:    uint64(t.cfg.Node),
		To:      uint64(to),
		Message: &transportpb.Message{Group: uint64(m.Group), Data: m.Data},
	})
	if err != nil {
		return fmt.Errorf("transport: snapshot to %d: %w", to, err)
	}
	return nil
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Close stops serving and sending. It waits for every goroutine of the
// transport, including running handlers.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := t.peers
	t.peers = map[consensus.NodeID]*peer{}
	t.mu.Unlock()

	t.srv.Stop() // ends incoming streams and waits for handlers
	t.cancel()
	for _, p := range peers {
		p.close()
	}
	t.wg.Wait()
	return nil
}

// server is the gRPC side.
type server struct {
	transportpb.UnimplementedTransportServer
	t *Transport
}

func (s *server) check(from, to uint64) error {
	if from == 0 {
		return status.Error(codes.InvalidArgument, "transport: first frame without sender")
	}
	if to != 0 && to != uint64(s.t.cfg.Node) {
		return status.Errorf(codes.InvalidArgument, "transport: node %d reached node %d (misrouted)", to, s.t.cfg.Node)
	}
	return nil
}

func (s *server) Stream(st grpc.ClientStreamingServer[transportpb.Batch, transportpb.Ack]) error {
	b, err := st.Recv()
	if err != nil {
		return err
	}
	if err := s.check(b.GetFrom(), b.GetTo()); err != nil {
		s.t.log.Warn("transport: refused stream", "err", err)
		return err
	}
	from := consensus.NodeID(b.GetFrom())
	var msgs []Message
	for {
		if len(b.GetMessages()) > 0 {
			msgs = msgs[:0]
			for _, m := range b.GetMessages() {
				msgs = append(msgs, Message{Group: storage.GroupID(m.GetGroup()), Data: m.GetData()})
			}
			s.t.cfg.Handler.HandleMessages(from, msgs)
		}
		b, err = st.Recv()
		if err != nil {
			return err
		}
	}
}

func (s *server) Snapshot(ctx context.Context, req *transportpb.SnapshotRequest) (*transportpb.SnapshotResponse, error) {
	if err := s.check(req.GetFrom(), req.GetTo()); err != nil {
		return nil, err
	}
	m := Message{Group: storage.GroupID(req.GetMessage().GetGroup()), Data: req.GetMessage().GetData()}
	if err := s.t.cfg.Handler.HandleSnapshot(ctx, consensus.NodeID(req.GetFrom()), m); err != nil {
		return nil, err
	}
	return &transportpb.SnapshotResponse{}, nil
}
