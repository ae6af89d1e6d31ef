package remote

import (
	"errors"
	"sync"
)

// CallStream multiplexes calls over one long-lived gRPC stream: each
// request carries an id, the plugin answers in any order, and a receiver
// goroutine hands each response to its caller. A broken stream fails every
// pending and later call with the error that broke it.
type CallStream[Req, Resp any] struct {
	send   func(*Req) error
	setID  func(*Req, uint64)
	respID func(*Resp) uint64

	sendMu sync.Mutex

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *Resp
	err     error
}

func NewCallStream[Req, Resp any](send func(*Req) error, recv func() (*Resp, error), setID func(*Req, uint64), respID func(*Resp) uint64) *CallStream[Req, Resp] {
	c := &CallStream[Req, Resp]{send: send, setID: setID, respID: respID, pending: make(map[uint64]chan *Resp)}
	go c.receive(recv)
	return c
}

// Call sends req and waits for its response.
func (c *CallStream[Req, Resp]) Call(req *Req) (*Resp, error) {
	return c.CallCtx(nil, req)
}

// CallCtx is Call that stops waiting when done is closed (nil: never),
// with a nil response and a nil error; the answer, when it comes, is
// dropped.
func (c *CallStream[Req, Resp]) CallCtx(done <-chan struct{}, req *Req) (*Resp, error) {
	ch := make(chan *Resp, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	c.setID(req, id)
	c.sendMu.Lock()
	err := c.send(req)
	c.sendMu.Unlock()
	if err != nil {
		c.Fail(err)
	}
	var resp *Resp
	ok := true
	select {
	case resp, ok = <-ch:
	case <-done:
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, nil
	}
	if !ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, c.err
	}
	return resp, nil
}

func (c *CallStream[Req, Resp]) receive(recv func() (*Resp, error)) {
	for {
		resp, err := recv()
		if err != nil {
			c.Fail(err)
			return
		}
		c.mu.Lock()
		id := c.respID(resp)
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
}

var errStreamClosed = errors.New("stream closed")

// fail ends the stream: every pending call returns err.
func (c *CallStream[Req, Resp]) Fail(err error) {
	if err == nil {
		err = errStreamClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}
