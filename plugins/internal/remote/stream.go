package remote

import (
	"errors"
	"sync"
)

// callStream multiplexes calls over one long-lived gRPC stream: each
// request carries an id, the plugin answers in any order, and a receiver
// goroutine hands each response to its caller. A broken stream fails every
// pending and later call with the error that broke it.
type callStream[Req, Resp any] struct {
	send   func(*Req) error
	setID  func(*Req, uint64)
	respID func(*Resp) uint64

	sendMu sync.Mutex

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *Resp
	err     error
}

func newCallStream[Req, Resp any](send func(*Req) error, recv func() (*Resp, error), setID func(*Req, uint64), respID func(*Resp) uint64) *callStream[Req, Resp] {
	c := &callStream[Req, Resp]{send: send, setID: setID, respID: respID, pending: make(map[uint64]chan *Resp)}
	go c.receive(recv)
	return c
}

// call sends req and waits for its response.
func (c *callStream[Req, Resp]) call(req *Req) (*Resp, error) {
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
		c.fail(err)
	}
	resp, ok := <-ch
	if !ok {
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, c.err
	}
	return resp, nil
}

func (c *callStream[Req, Resp]) receive(recv func() (*Resp, error)) {
	for {
		resp, err := recv()
		if err != nil {
			c.fail(err)
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
func (c *callStream[Req, Resp]) fail(err error) {
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
