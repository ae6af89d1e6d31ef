package netfault

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// chunkSize is the most a proxy reads from one side before forwarding it.
const chunkSize = 32 << 10

// queueLen is how many chunks a direction holds while it waits (for its
// delay or for Heal) before it stops reading from its source.
const queueLen = 64

// dialTimeout bounds a proxy's dial to its target.
const dialTimeout = 5 * time.Second

// Proxy forwards the TCP connections accepted on its loopback listener to a
// target address, and injects faults into them on request. Its methods are
// safe for concurrent use.
type Proxy struct {
	ln   net.Listener
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu     sync.Mutex
	target string
	gate   chan struct{} // closed while the link is healed
	delay  time.Duration
	drop   float64
	rng    *rand.Rand
	conns  map[*conn]struct{}
	closed bool

	accepted atomic.Uint64
	chunks   atomic.Uint64
	bytes    atomic.Uint64
	resets   atomic.Uint64
}

// Stats counts what a proxy has done since it was created.
type Stats struct {
	Conns  uint64 // connections accepted
	Chunks uint64 // reads forwarded, in both directions (at most chunkSize bytes each)
	Bytes  uint64 // bytes forwarded, in both directions
	Resets uint64 // connections reset by the Drop probability or Reset
}

// Add returns the sum of s and o.
func (s Stats) Add(o Stats) Stats {
	return Stats{s.Conns + o.Conns, s.Chunks + o.Chunks, s.Bytes + o.Bytes, s.Resets + o.Resets}
}

// Sub returns s minus an earlier reading o.
func (s Stats) Sub(o Stats) Stats {
	return Stats{s.Conns - o.Conns, s.Chunks - o.Chunks, s.Bytes - o.Bytes, s.Resets - o.Resets}
}

// NewProxy starts a proxy on 127.0.0.1 (a free port) that forwards to
// target. The caller must Close it.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netfault: listen: %w", err)
	}
	gate := make(chan struct{})
	close(gate)
	p := &Proxy{
		ln:     ln,
		done:   make(chan struct{}),
		target: target,
		gate:   gate,
		rng:    rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		conns:  make(map[*conn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address connections are forwarded to.
func (p *Proxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// SetTarget changes the address that connections accepted from now on are
// forwarded to (for example after the target restarted on another port).
// Connections already forwarded keep their target.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// Partition blackholes the link until Heal. Nothing is forwarded in either
// direction: open connections stay open but stall (what a peer sees when
// every packet is lost: writes fill the socket buffers, then block, and
// reads wait), and new connections are accepted but held, without dialing
// the target, so that their handshakes hang as they would against an
// unreachable host. Nothing is closed, so a client gets no signal to
// reconnect; only its own timeouts (keepalives, deadlines) end a stalled
// connection. Partitioning a partitioned link does nothing.
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

// Heal ends a Partition the way a long outage ends: every connection that
// was stalled or held is reset, and what was sent on it during the
// partition is lost, as if TCP had given up on it; clients reconnect.
// Healing a link that is not partitioned does nothing.
func (p *Proxy) Heal() { p.heal(true) }

// Resume ends a Partition the way a short outage ends: stalled connections
// resume with the bytes they held (TCP retransmits them) and held ones are
// dialed through. Messages sent during the partition arrive late instead
// of never.
func (p *Proxy) Resume() { p.heal(false) }

func (p *Proxy) heal(reset bool) {
	p.mu.Lock()
	select {
	case <-p.gate:
		p.mu.Unlock()
		return
	default:
	}
	var cs []*conn
	if reset {
		// Mark them before opening the gate, so that none forwards a held
		// byte; connections accepted after the gate opens are fresh.
		for c := range p.conns {
			c.kill()
			cs = append(cs, c)
		}
	}
	close(p.gate)
	p.mu.Unlock()
	for _, c := range cs {
		p.resets.Add(1)
		c.abort()
	}
}

// Partitioned reports whether the link is partitioned.
func (p *Proxy) Partitioned() bool {
	select {
	case <-p.gateChan():
		return false
	default:
		return true
	}
}

// SetDelay adds latency d to every chunk forwarded from now on, in both
// directions. Chunks keep their order; throughput is not limited.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// SetDrop makes each forwarded chunk fail with probability prob (0 turns it
// off). A TCP stream cannot lose bytes and stay usable, so a dropped chunk
// resets its connection (both ends see a reset, as after a lost
// connection); the client must reconnect.
func (p *Proxy) SetDrop(prob float64) {
	p.mu.Lock()
	p.drop = prob
	p.mu.Unlock()
}

// Reset aborts every open connection (both ends see a reset). New
// connections are accepted as usual.
func (p *Proxy) Reset() {
	p.mu.Lock()
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		p.resets.Add(1)
		c.abort()
	}
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Conns:  p.accepted.Load(),
		Chunks: p.chunks.Load(),
		Bytes:  p.bytes.Load(),
		Resets: p.resets.Load(),
	}
}

// Close stops the listener, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range cs {
		c.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) gateChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gate
}

// waitOpen blocks while the link is partitioned; false means c ended or
// was reset by Heal.
func (p *Proxy) waitOpen(c *conn) bool {
	for {
		gate := p.gateChan()
		select {
		case <-gate:
			if c.killed() {
				return false // reset by Heal: forward nothing more
			}
			// Partition may have replaced the gate since it was read.
			if gate == p.gateChan() {
				return true
			}
		case <-c.done:
			return false
		}
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond): // transient (EMFILE): back off
			}
			continue
		}
		p.accepted.Add(1)
		c := &conn{client: nc, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			nc.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c)
	}
}

// serve forwards one connection: it waits out a partition, dials the
// target and pumps both directions until both have ended.
func (p *Proxy) serve(c *conn) {
	defer p.wg.Done()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	if !p.waitOpen(c) {
		return
	}
	d := net.Dialer{Timeout: dialTimeout, Cancel: c.done} //nolint:staticcheck // Cancel ties the dial to the conn without a context goroutine
	tc, err := d.Dial("tcp", p.Target())
	if err != nil {
		return // the client sees its connection closed, as if refused
	}
	if !c.setTarget(tc) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(c, c.client, tc) }()
	go func() { defer wg.Done(); p.pipe(c, tc, c.client) }()
	wg.Wait()
}

type chunk struct {
	b   []byte
	due time.Time
}

// pipe forwards src to dst: a reader stamps each chunk with its due time,
// the writer forwards it when due and while the link is not partitioned.
// At src's end it half-closes dst; on any error it ends the connection.
func (p *Proxy) pipe(c *conn, src, dst net.Conn) {
	q := make(chan chunk, queueLen)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(q)
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				due := time.Now().Add(p.delay)
				p.mu.Unlock()
				select {
				case q <- chunk{buf[:n], due}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	var timer *time.Timer
	for ck := range q {
		if wait := time.Until(ck.due); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
				defer timer.Stop()
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-c.done:
				return
			}
		}
		if !p.waitOpen(c) {
			return
		}
		p.mu.Lock()
		drop := p.drop > 0 && p.rng.Float64() < p.drop
		p.mu.Unlock()
		if drop {
			p.resets.Add(1)
			c.abort()
			return
		}
		if _, err := dst.Write(ck.b); err != nil {
			c.close()
			return
		}
		p.chunks.Add(1)
		p.bytes.Add(uint64(len(ck.b)))
	}
	select {
	case <-c.done:
	default:
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // pass the end of the stream on
		}
	}
}

// conn is one proxied connection: the client's end and, once dialed, the
// target's.
type conn struct {
	client net.Conn
	done   chan struct{}
	once   sync.Once

	mu     sync.Mutex
	target net.Conn
	ended  bool
	dead   bool // reset by Heal; forwards nothing more
}

func (c *conn) kill() {
	c.mu.Lock()
	c.dead = true
	c.mu.Unlock()
}

func (c *conn) killed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// setTarget records the dialed target; false if the conn already ended.
func (c *conn) setTarget(t net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		t.Close()
		return false
	}
	c.target = t
	return true
}

func (c *conn) close() {
	c.once.Do(func() {
		c.mu.Lock()
		c.ended = true
		t := c.target
		c.mu.Unlock()
		close(c.done)
		c.client.Close()
		if t != nil {
			t.Close()
		}
	})
}

// abort closes both ends with a reset instead of an orderly close.
func (c *conn) abort() {
	c.mu.Lock()
	t := c.target
	c.mu.Unlock()
	for _, nc := range []net.Conn{c.client, t} {
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	c.close()
}
