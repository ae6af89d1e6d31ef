package transport

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/consensus/transport/transportpb"
)

// peerState says whether Send accepts messages for a peer.
type peerState uint8

const (
	stateConnecting peerState = iota // first attempt in progress: queue
	stateUp                          // stream open: queue
	stateDown                        // last attempt failed or stream broke: drop
)

// frameOverhead approximates the protobuf framing of one message in a batch.
const frameOverhead = 24

// peer is the sending side towards one node: a queue drained by one sender
// goroutine over one stream.
type peer struct {
	t    *Transport
	id   consensus.NodeID
	wake chan struct{} // queue became non-empty
	redo chan struct{} // address changed: reconnect now
	done chan struct{} // closed by close

	mu     sync.Mutex
	addr   string
	conn   *grpc.ClientConn
	queue  []*transportpb.Message
	bytes  int
	state  peerState
	closed bool
}

func newPeer(t *Transport, id consensus.NodeID, addr string) *peer {
	return &peer{
		t:    t,
		id:   id,
		addr: addr,
		wake: make(chan struct{}, 1),
		redo: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (p *peer) enqueue(msgs []Message) bool {
	n := 0
	for _, m := range msgs {
		n += len(m.Data) + frameOverhead
	}
	p.mu.Lock()
	if p.closed || p.state == stateDown ||
		len(p.queue)+len(msgs) > p.t.cfg.QueueSize || p.bytes+n > p.t.cfg.QueueBytes {
		p.mu.Unlock()
		return false
	}
	for _, m := range msgs {
		p.queue = append(p.queue, &transportpb.Message{Group: uint64(m.Group), Data: m.Data})
	}
	p.bytes += n
	p.mu.Unlock()
	signal(p.wake)
	return true
}

// take empties the queue.
func (p *peer) take() []*transportpb.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue, p.bytes = nil, 0
	return q
}

func (p *peer) setState(s peerState) {
	p.mu.Lock()
	p.state = s
	if s == stateDown {
		p.queue, p.bytes = nil, 0
	}
	p.mu.Unlock()
}

func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	if p.addr == addr {
		p.mu.Unlock()
		return
	}
	p.addr = addr
	old := p.conn
	p.conn = nil
	p.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	signal(p.redo)
}

// client returns a client on the peer's current connection, dialing lazily.
func (p *peer) client() (transportpb.TransportClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.conn == nil {
		cfg := &p.t.cfg
		bo := backoff.DefaultConfig
		bo.BaseDelay, bo.MaxDelay = cfg.BackoffMin, cfg.BackoffMax
		conn, err := grpc.NewClient("passthrough:///"+p.addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMsgSize), grpc.MaxCallSendMsgSize(cfg.MaxMsgSize)),
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cfg.Keepalive, Timeout: cfg.Keepalive, PermitWithoutStream: true}),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second}),
		)
		if err != nil {
			return nil, err
		}
		p.conn = conn
	}
	return transportpb.NewTransportClient(p.conn), nil
}

func (p *peer) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conn := p.conn
	p.conn = nil
	p.mu.Unlock()
	close(p.done)
	if conn != nil {
		_ = conn.Close()
	}
}

// run is the sender goroutine: connect, pump batches, reconnect with backoff.
func (p *peer) run() {
	wait := p.t.cfg.BackoffMin
	for {
		opened, err := p.stream()
		select {
		case <-p.done:
			return
		default:
		}
		p.setState(stateDown)
		if opened {
			wait = p.t.cfg.BackoffMin
		}
		p.t.log.Debug("transport: stream to peer down", "peer", uint64(p.id), "err", err, "retry", wait)
		timer := time.NewTimer(wait)
		select {
		case <-p.done:
			timer.Stop()
			return
		case <-p.redo:
			wait = p.t.cfg.BackoffMin
		case <-timer.C:
			wait = min(2*wait, p.t.cfg.BackoffMax)
		}
		timer.Stop()
	}
}

// stream opens one stream and sends queued batches on it until it breaks;
// opened says whether it got as far as an open stream.
func (p *peer) stream() (opened bool, err error) {
	c, err := p.client()
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(p.t.ctx)
	st, err := c.Stream(ctx)
	if err != nil {
		cancel()
		return false, err
	}
	// The receiver answers only when it ends the stream; watching for that
	// answer is how an idle sender learns the stream broke.
	broken := make(chan struct{})
	go func() {
		defer close(broken)
		var ack transportpb.Ack
		_ = st.RecvMsg(&ack)
	}()
	defer func() {
		cancel()
		<-broken
	}()
	if err := st.Send(&transportpb.Batch{From: uint64(p.t.cfg.Node), To: uint64(p.id)}); err != nil {
		return false, err
	}
	p.setState(stateUp)
	limit := p.t.cfg.MaxMsgSize - 1024
	for {
		select {
		case <-p.done:
			return true, ErrClosed
		case <-p.redo:
			signal(p.redo) // let run skip the backoff
			return true, nil
		case <-broken:
			return true, context.Canceled
		case <-p.wake:
		}
		q := p.take()
		for len(q) > 0 {
			n, size := 0, 0
			for n < len(q) && (n == 0 || size+len(q[n].Data)+frameOverhead <= limit) {
				size += len(q[n].Data) + frameOverhead
				n++
			}
			if err := st.Send(&transportpb.Batch{Messages: q[:n]}); err != nil {
				return true, err
			}
			q = q[n:]
		}
	}
}
