package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Handler that keeps what it received.
type recorder struct {
	mu      sync.Mutex
	msgs    map[consensus.NodeID][]Message
	snaps   []Message
	snapErr error
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{msgs: map[consensus.NodeID][]Message{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) HandleMessages(from consensus.NodeID, msgs []Message) {
	r.mu.Lock()
	r.msgs[from] = append(r.msgs[from], msgs...)
	r.mu.Unlock()
	signal(r.changed)
}

func (r *recorder) HandleSnapshot(_ context.Context, from consensus.NodeID, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.snapErr != nil {
		return r.snapErr
	}
	r.snaps = append(r.snaps, m)
	return nil
}

func (r *recorder) count(from consensus.NodeID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs[from])
}

func (r *recorder) got(from consensus.NodeID) []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs[from]...)
}

func newTransport(t *testing.T, id consensus.NodeID, listen string, h Handler) *Transport {
	t.Helper()
	tr, err := New(Config{Node: id, Listen: listen, Handler: h, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sendAll sends msgs one call at a time, retrying a dropped call (the
// connection may still be coming up).
func sendAll(t *testing.T, tr *Transport, to consensus.NodeID, msgs []Message) {
	t.Helper()
	for _, m := range msgs {
		waitFor(t, "send accepted", func() bool { return tr.Send(to, []Message{m}) })
	}
}

func TestOrderedDeliveryBothWays(t *testing.T) {
	ra, rb := newRecorder(), newRecorder()
	a := newTransport(t, 1, "127.0.0.1:0", ra)
	b := newTransport(t, 2, "127.0.0.1:0", rb)
	a.SetPeer(2, b.Addr())
	b.SetPeer(1, a.Addr())

	const n = 2000
	var ab, ba []Message
	for i := range n {
		ab = append(ab, Message{Group: storage.GroupID(i % 7), Data: fmt.Appendf(nil, "a->b %d", i)})
		ba = append(ba, Message{Group: storage.GroupID(i % 5), Data: fmt.Appendf(nil, "b->a %d", i)})
	}
	var wg sync.WaitGroup
	wg.Go(func() { sendAll(t, a, 2, ab) })
	wg.Go(func() { sendAll(t, b, 1, ba) })
	wg.Wait()
	waitFor(t, "all delivered", func() bool { return rb.count(1) == n && ra.count(2) == n })
	for i, m := range rb.got(1) {
		if m.Group != ab[i].Group || !bytes.Equal(m.Data, ab[i].Data) {
			t.Fatalf("a->b message %d: got %d %q, want %d %q", i, m.Group, m.Data, ab[i].Group, ab[i].Data)
		}
	}
	for i, m := range ra.got(2) {
		if m.Group != ba[i].Group || !bytes.Equal(m.Data, ba[i].Data) {
			t.Fatalf("b->a message %d differs", i)
		}
	}
	if rb.count(3) != 0 || len(rb.msgs) != 1 {
		t.Fatalf("unexpected senders: %v", rb.msgs)
	}
}

func TestBatchesSentTogether(t *testing.T) {
	rb := newRecorder()
	a := newTransport(t, 1, "127.0.0.1:0", newRecorder())
	b := newTransport(t, 2, "127.0.0.1:0", rb)
	a.SetPeer(2, b.Addr())
	batch := []Message{{Group: 1, Data: []byte("x")}, {Group: 2, Data: []byte("y")}, {Group: 3, Data: []byte("z")}}
	waitFor(t, "send accepted", func() bool { return a.Send(2, batch) })
	waitFor(t, "delivered", func() bool { return rb.count(1) == 3 })
}

func TestUnknownPeerAndSelf(t *testing.T) {
	a := newTransport(t, 1, "127.0.0.1:0", newRecorder())
	if a.Send(9, []Message{{Group: 1, Data: []byte("x")}}) {
		t.Fatal("send to unknown peer accepted")
	}
	err := a.SendSnapshot(context.Background(), 9, Message{Group: 1})
	if !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("snapshot to unknown peer: %v", err)
	}
	a.SetPeer(1, a.Addr()) // self: ignored
	if len(a.Peers()) != 0 {
		t.Fatal("self became a peer")
	}
}

func TestLargeMessage(t *testing.T) {
	rb := newRecorder()
	a := newTransport(t, 1, "127.0.0.1:0", newRecorder())
	b := newTransport(t, 2, "127.0.0.1:0", rb)
	a.SetPeer(2, b.Addr())
	big := bytes.Repeat([]byte("k"), 20<<20) // above gRPC's 4 MiB default
	// Two of them exceed nothing; three in one queue are split into frames.
	msgs := []Message{{Group: 1, Data: big}, {Group: 2, Data: big}, {Group: 3, Data: []byte("tail")}}
	waitFor(t, "send accepted", func() bool { return a.Send(2, msgs) })
	waitFor(t, "delivered", func() bool { return rb.count(1) == 3 })
	got := rb.got(1)
	if !bytes.Equal(got[0].Data, big) || !bytes.Equal(got[1].Data, big) || string(got[2].Data) != "tail" {
		t.Fatal("large messages corrupted")
	}
	if err := a.SendSnapshot(context.Background(), 2, Message{Group: 4, Data: big}); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshot(t *testing.T) {
	rb := newRecorder()
	a := newTransport(t, 1, "127.0.0.1:0", newRecorder())
	b := newTransport(t, 2, "127.0.0.1:0", rb)
	a.SetPeer(2, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.SendSnapshot(ctx, 2, Message{Group: 7, Data: []byte("snap")}); err != nil {
		t.Fatal(err)
	}
	rb.mu.Lock()
	if len(rb.snaps) != 1 || rb.snaps[0].Group != 7 || string(rb.snaps[0].Data) != "snap" {
		t.Fatalf("snapshots: %v", rb.snaps)
	}
	rb.snapErr = errors.New("no such group")
	rb.mu.Unlock()
	err := a.SendSnapshot(ctx, 2, Message{Group: 8, Data: []byte("snap")})
	if err == nil || !strings.Contains(err.Error(), "no such group") {
		t.Fatalf("handler error not returned: %v", err)
	}
}

func TestReconnect(t *testing.T) {
	rb := newRecorder()
	a := newTransport(t, 1, "127.0.0.1:0", newRecorder())
	b, err := New(Config{Node: 2, Listen: "127.0.0.1:0", Handler: rb})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	a.SetPeer(2, addr)
	sendAll(t, a, 2, []Message{{Group: 1, Data: []byte("before")}})
	waitFor(t, "first delivered", func() bool { return rb.count(1) == 1 })

	_ = b.Close()
	// With the peer gone, sends are eventually refused.
	waitFor(t, "sends refused", func() bool { return !a.Send(2, []Message{{Group: 1, Data: []byte("lost")}}) })

	rb2 := newRecorder()
	var b2 *Transport
	waitFor(t, "relisten", func() bool { // the port may linger briefly
		b2, err = New(Config{Node: 2, Listen: addr, Handler: rb2})
		return err == nil
	})
	t.Cleanup(func() { _ = b2.Close() })
	waitFor(t, "delivered after reconnect", func() bool {
		a.Send(2, []Message{{Group: 1, Data: []byte("after")}})
		return rb2.count(1) > 0
	})
	for _, m := range rb2.got(1) {
		if string(m.Data) != "after" {
			t.Fatalf("unexpected message after reconnect: %q", m.Data)
		}
	}
}

func TestSetPeerMovesAddress(t *testing.T) {
	rb, rc := newRecorder(), newRecorder()
	a := newTransport(t, 1, "127.0.0.1:0", newRecorder())
	b := newTransport(t, 2, "127.0.0.1:0", rb)
	// c plays node 2 at another address.
	c := newTransport(t, 2, "127.0.0.1:0", rc)
	a.SetPeer(2, b.Addr())
	sendAll(t, a, 2, []Message{{Group: 1, Data: []byte("to b")}})
	waitFor(t, "b got it", func() bool { return rb.count(1) == 1 })
	a.SetPeer(2, c.Addr())
	waitFor(t, "c gets it", func() bool {
		a.Send(2, []Message{{Group: 1, Data: []byte("to c")}})
		return rc.count(1) > 0
	})
}

func TestMisroutedStreamRefused(t *testing.T) {
	rb := newRecorder()
	a := newTransport(t, 1, "127.0.0.1:0", newRecorder())
	b := newTransport(t, 2, "127.0.0.1:0", rb)
	a.SetPeer(3, b.Addr()) // wrong address for node 3
	waitFor(t, "sends refused", func() bool { return !a.Send(3, []Message{{Group: 1, Data: []byte("x")}}) })
	if err := a.SendSnapshot(context.Background(), 3, Message{Group: 1}); err == nil {
		t.Fatal("misrouted snapshot accepted")
	}
	if len(rb.got(1)) != 0 {
		t.Fatal("misrouted messages delivered")
	}
}

func TestQueueFull(t *testing.T) {
	// A listener that accepts and never answers: the stream never opens, so
	// the queue (still "connecting") fills up and Send refuses.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	a, err := New(Config{Node: 1, Listen: "127.0.0.1:0", Handler: newRecorder(), QueueSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	a.SetPeer(2, lis.Addr().String())
	accepted := 0
	for range 20 {
		if a.Send(2, []Message{{Group: 1, Data: []byte("x")}}) {
			accepted++
		}
	}
	if accepted > 10 {
		t.Fatalf("queue of 10 accepted %d", accepted)
	}
}

func TestCloseIdempotent(t *testing.T) {
	a, err := New(Config{Node: 1, Listen: "127.0.0.1:0", Handler: newRecorder()})
	if err != nil {
		t.Fatal(err)
	}
	a.SetPeer(2, "127.0.0.1:1")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if a.Send(2, []Message{{Group: 1}}) {
		t.Fatal("send after close accepted")
	}
	if err := a.SendSnapshot(context.Background(), 2, Message{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("snapshot after close: %v", err)
	}
}
