package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// minRequestBytes is the smallest request frame: api key, api version,
// correlation id and the client id's length.
const minRequestBytes = 10

// conn serves one client connection with three kinds of goroutines:
//
//   - the reader (serve) reads frames one after another, decodes each
//     request and queues a pending slot for it, in arrival order;
//   - one handler goroutine per request runs it and fills its slot;
//   - the writer takes slots from the queue in order, waits for each to be
//     filled and writes its response.
//
// So requests are handled concurrently but answered strictly in request
// order. The queue's capacity (Config.MaxInFlight) bounds the requests
// handled or awaiting their write; when it is full the reader stops
// reading. Requests that change state (produce, admin calls) are also
// handed to the Host in request order: each waits for the previous one
// (see ordered), because the Host orders nothing between concurrent calls
// and Kafka clients rely on a connection's requests taking effect in
// order (idempotent sequence numbers above all).
//
// A frame that cannot be served (too large, unknown key or version,
// malformed body) is logged and closes the connection after the responses
// to earlier requests are written, as Kafka does.
type conn struct {
	s      *Server
	nc     net.Conn
	log    *slog.Logger
	ctx    context.Context // canceled when the connection is aborted
	cancel context.CancelFunc
	queue  chan *pending
	wg     sync.WaitGroup // the writer and the handlers

	// lastOrdered is closed when the latest ordered request has finished
	// its Host calls; only the reader touches it.
	lastOrdered chan struct{}
	closeOnce   sync.Once
}

// pending is one request's place in the response order.
type pending struct {
	done  chan struct{} // closed when resp and fatal are set
	corr  int32
	key   int16
	ver   int16
	resp  kmsg.Response // nil: no response (acks=0 produce)
	fatal bool          // close the connection instead of answering
}

// request is what a handler gets.
type request struct {
	c        *conn
	kreq     kmsg.Request
	clientID *string
	version  int16
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	closed := make(chan struct{})
	close(closed)
	return &conn{
		s:           s,
		nc:          nc,
		log:         s.log.With("remote", nc.RemoteAddr().String()),
		ctx:         ctx,
		cancel:      cancel,
		queue:       make(chan *pending, s.cfg.MaxInFlight),
		lastOrdered: closed,
	}
}

// abort cancels in-flight requests and closes the socket; serve returns
// once every goroutine of the connection has stopped.
func (c *conn) abort() {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.nc.Close()
	})
}

// serve reads requests until the connection ends, then waits for the
// handlers and the writer.
func (c *conn) serve() {
	c.wg.Add(1)
	go c.write()
	c.read()
	close(c.queue)
	c.wg.Wait()
	c.abort()
}

// read is the reader loop. It returns when the client closes, on a read
// error, or after queueing a fatal slot.
func (c *conn) read() {
	var size [4]byte
	for {
		if c.s.cfg.IdleTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
		}
		if _, err := io.ReadFull(c.nc, size[:]); err != nil {
			c.readFailed(err, "size")
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < minRequestBytes || n > c.s.cfg.MaxRequestBytes {
			// Refused before allocating: n comes from the peer.
			c.log.Warn("request frame size out of range, closing connection",
				"size", n, "socket_request_max_bytes", c.s.cfg.MaxRequestBytes)
			c.s.tel.connError("frame_size")
			c.fatal(0, -1, -1)
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(c.nc, frame); err != nil {
			c.readFailed(err, "frame")
			return
		}
		if !c.dispatch(frame) {
			return
		}
	}
}

func (c *conn) readFailed(err error, what string) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.ctx.Err() != nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("idle connection closed", "idle_timeout", c.s.cfg.IdleTimeout)
	default:
		c.log.Debug("read failed", "what", what, "err", err)
	}
}

// fatal queues a slot that closes the connection once the earlier
// responses are written.
func (c *conn) fatal(corr int32, key, ver int16) {
	p := &pending{done: make(chan struct{}), corr: corr, key: key, ver: ver, fatal: true}
	close(p.done)
	c.enqueue(p)
}

func (c *conn) enqueue(p *pending) bool {
	select {
	case c.queue <- p:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// dispatch decodes one frame and starts its handler. It reports whether
// the reader should go on.
func (c *conn) dispatch(frame []byte) bool {
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	ver := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))

	a := c.s.lookup(key)
	if a == nil {
		c.log.Warn("unsupported API key, closing connection", "api_key", key, "api_version", ver)
		c.s.tel.connError("unknown_key")
		c.fatal(corr, key, ver)
		return false
	}
	if ver < a.min || ver > a.max {
		if key == apiVersionsKey {
			// KIP-511: answer a version we cannot parse with a v0
			// response so the client can retry within our range.
			p := &pending{done: make(chan struct{}), corr: corr, key: key, ver: 0, resp: apiVersionsUnsupported(c.s)}
			close(p.done)
			c.s.tel.request(key, ver, 0, "unsupported_version")
			return c.enqueue(p)
		}
		c.log.Warn("unsupported API version, closing connection", "api", a.name, "api_key", key, "api_version", ver, "min", a.min, "max", a.max)
		c.s.tel.connError("unsupported_version")
		c.fatal(corr, key, ver)
		return false
	}

	kreq := kmsg.RequestForKey(key)
	kreq.SetVersion(ver)
	clientID, body, err := parseHeader(frame[8:], kreq.IsFlexible())
	if err == nil {
		err = kreq.ReadFrom(body)
	}
	if err != nil {
		c.log.Warn("malformed request, closing connection", "api", a.name, "api_version", ver, "err", err)
		c.s.tel.connError("malformed")
		c.fatal(corr, key, ver)
		return false
	}

	p := &pending{done: make(chan struct{}), corr: corr, key: key, ver: ver}
	var after <-chan struct{}
	var release chan struct{}
	if a.ordered {
		after, release = c.lastOrdered, make(chan struct{})
		c.lastOrdered = release
	}
	if !c.enqueue(p) {
		return false
	}
	r := &request{c: c, kreq: kreq, clientID: clientID, version: ver}
	c.wg.Add(1)
	go c.handle(a, r, p, after, release)
	return true
}

// handle runs one request and fills its slot. A panic is a bug in this
// package or the Host: it is logged and closes the connection.
func (c *conn) handle(a *api, r *request, p *pending, after <-chan struct{}, release chan struct{}) {
	start := time.Now()
	outcome := "ok"
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic handling request, closing connection", "api", a.name, "api_version", r.version, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			p.resp, p.fatal, outcome = nil, true, "panic"
		}
		if release != nil {
			close(release)
		}
		c.s.tel.request(a.key, r.version, time.Since(start), outcome)
		close(p.done)
		c.wg.Done()
	}()
	if after != nil {
		select {
		case <-after:
		case <-c.ctx.Done():
			p.fatal, outcome = true, "canceled"
			return
		}
	}
	ctx, span := c.s.tel.startSpan(c.ctx, a.name, r.version)
	defer span.End()
	resp, err := a.handle(ctx, r)
	if err != nil {
		c.log.Warn("request failed, closing connection", "api", a.name, "api_version", r.version, "err", err)
		p.fatal, outcome = true, "error"
		return
	}
	if resp != nil {
		resp.SetVersion(r.version)
		if t, ok := resp.(kmsg.SetThrottleResponse); ok {
			t.SetThrottle(0)
		}
	}
	p.resp = resp
}

// write is the writer loop: responses in request order.
func (c *conn) write() {
	defer c.wg.Done()
	var buf []byte
	for p := range c.queue {
		select {
		case <-p.done:
		case <-c.ctx.Done():
			c.drain()
			return
		}
		if p.fatal {
			c.abort()
			c.drain()
			return
		}
		if p.resp == nil {
			continue
		}
		buf = appendResponse(buf[:0], p.corr, p.resp)
		if _, err := c.nc.Write(buf); err != nil {
			if c.ctx.Err() == nil {
				c.log.Debug("write failed, closing connection", "err", err)
			}
			c.abort()
			c.drain()
			return
		}
	}
}

// drain empties the queue after the connection was aborted so the reader
// never blocks on it; the handlers see the canceled context.
func (c *conn) drain() {
	for range c.queue {
	}
}

// appendResponse frames a response: size, correlation id, the response
// header's tagged fields when flexible (never for ApiVersions, whose
// response header is always v0), then the body.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4))
	return dst
}

var errShortHeader = errors.New("kafka: truncated request header")

// parseHeader reads the client id and, for flexible requests, the header's
// tagged fields (request header v1 and v2), returning the body.
func parseHeader(b []byte, flexible bool) (clientID *string, body []byte, err error) {
	if len(b) < 2 {
		return nil, nil, errShortHeader
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n >= 0 {
		if len(b) < int(n) {
			return nil, nil, errShortHeader
		}
		s := string(b[:n])
		clientID, b = &s, b[n:]
	} else if n != -1 {
		return nil, nil, fmt.Errorf("kafka: client id length %d", n)
	}
	if !flexible {
		return clientID, b, nil
	}
	tags, b, err := uvarint(b)
	if err != nil {
		return nil, nil, err
	}
	for ; tags > 0; tags-- {
		if _, b, err = uvarint(b); err != nil { // tag key
			return nil, nil, err
		}
		var size uint64
		if size, b, err = uvarint(b); err != nil {
			return nil, nil, err
		}
		if uint64(len(b)) < size {
			return nil, nil, errShortHeader
		}
		b = b[size:]
	}
	return clientID, b, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<31 {
		return 0, nil, errShortHeader
	}
	return v, b[n:], nil
}
