package netfault

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes lines back, prefixed with its name.
type echoServer struct {
	ln       net.Listener
	name     string
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func newEcho(t *testing.T, name string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, name: name}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, s.name+":"+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func (s *echoServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c: c, r: bufio.NewReader(c)}
}

// roundTrip sends msg and returns the echoed line, or an error if none
// arrives within wait.
func (c *client) roundTrip(msg string, wait time.Duration) (string, error) {
	if _, err := io.WriteString(c.c, msg+"\n"); err != nil {
		return "", err
	}
	return c.read(wait)
}

func (c *client) read(wait time.Duration) (string, error) {
	c.c.SetReadDeadline(time.Now().Add(wait))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return line[:len(line)-1], nil
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestForward(t *testing.T) {
	s := newEcho(t, "a")
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	for _, m := range []string{"x", "hello", "z"} {
		got, err := c.roundTrip(m, 5*time.Second)
		if err != nil || got != "a:"+m {
			t.Fatalf("roundTrip(%q) = %q, %v", m, got, err)
		}
	}
	st := p.Stats()
	if st.Conns != 1 || st.Chunks == 0 || st.Bytes == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPartitionStallsThenHealResets(t *testing.T) {
	s := newEcho(t, "a")
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("before", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Partition()
	if !p.Partitioned() {
		t.Fatal("not partitioned")
	}
	if _, err := c.roundTrip("during", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("during partition: %v, want a read timeout", err)
	}
	p.Partition() // idempotent
	held := dial(t, p.Addr())
	io.WriteString(held.c, "held\n")
	waitAccepted(t, p, 2) // dial returns before the proxy accepts
	accepted := s.accepted.Load()
	p.Heal()
	// Both connections are reset; what they carried is lost.
	for _, cl := range []*client{c, held} {
		if got, err := cl.read(5 * time.Second); err == nil || isTimeout(err) {
			t.Fatalf("after heal: %q, %v; want the connection reset", got, err)
		}
	}
	if n := s.accepted.Load(); n != accepted {
		t.Fatalf("the held connection reached the target")
	}
	c2 := dial(t, p.Addr())
	if got, err := c2.roundTrip("after", 5*time.Second); err != nil || got != "a:after" {
		t.Fatalf("after heal: %q, %v", got, err)
	}
	p.Heal() // idempotent: the new connection survives
	if got, err := c2.roundTrip("again", 5*time.Second); err != nil || got != "a:again" {
		t.Fatalf("after a second heal: %q, %v", got, err)
	}
}

func waitAccepted(t *testing.T, p *Proxy, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); p.Stats().Conns < n; {
		if time.Now().After(deadline) {
			t.Fatalf("proxy accepted %d connections, want %d", p.Stats().Conns, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPartitionResumeDelivers(t *testing.T) {
	s := newEcho(t, "a")
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("before", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Partition()
	if _, err := c.roundTrip("during", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("during partition: %v, want a read timeout", err)
	}
	held := dial(t, p.Addr()) // accepted: the handshake hangs, not refused
	if _, err := held.roundTrip("held", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("held connection: %v, want a read timeout", err)
	}
	if n := s.accepted.Load(); n != 1 {
		t.Fatalf("target accepted %d connections, want 1 (the held one not dialed)", n)
	}
	p.Resume()
	// The stalled and held lines are delivered: nothing was closed.
	if got, err := c.read(5 * time.Second); err != nil || got != "a:during" {
		t.Fatalf("after resume: %q, %v", got, err)
	}
	if got, err := held.read(5 * time.Second); err != nil || got != "a:held" {
		t.Fatalf("held after resume: %q, %v", got, err)
	}
	if got, err := c.roundTrip("after", 5*time.Second); err != nil || got != "a:after" {
		t.Fatalf("after resume: %q, %v", got, err)
	}
}

func TestDelay(t *testing.T) {
	s := newEcho(t, "a")
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("warm", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	const d = 50 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	if _, err := c.roundTrip("slow", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the delay is added once each way.
	if el := time.Since(start); el < 2*d {
		t.Fatalf("round trip took %v, want at least %v", el, 2*d)
	}
	p.SetDelay(0)
}

func TestDropResets(t *testing.T) {
	s := newEcho(t, "a")
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("ok", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetDrop(1)
	if _, err := c.roundTrip("lost", 5*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("after drop: %v, want a connection error", err)
	}
	if p.Stats().Resets == 0 {
		t.Fatal("no reset counted")
	}
	p.SetDrop(0)
	c2 := dial(t, p.Addr())
	if got, err := c2.roundTrip("again", 5*time.Second); err != nil || got != "a:again" {
		t.Fatalf("new connection: %q, %v", got, err)
	}
}

func TestReset(t *testing.T) {
	s := newEcho(t, "a")
	p := newProxy(t, s.addr())
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("ok", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	if _, err := c.read(5 * time.Second); err == nil || isTimeout(err) {
		t.Fatalf("after reset: %v, want a connection error", err)
	}
}

func TestTargetDownClosesClient(t *testing.T) {
	s := newEcho(t, "a")
	addr := s.addr()
	s.close()
	p := newProxy(t, addr)
	c := dial(t, p.Addr())
	if _, err := c.read(5 * time.Second); err == nil || isTimeout(err) {
		t.Fatalf("read: %v, want EOF or reset", err)
	}
}

func TestSetTarget(t *testing.T) {
	a, b := newEcho(t, "a"), newEcho(t, "b")
	p := newProxy(t, a.addr())
	c := dial(t, p.Addr())
	if got, _ := c.roundTrip("1", 5*time.Second); got != "a:1" {
		t.Fatalf("got %q", got)
	}
	p.SetTarget(b.addr())
	if p.Target() != b.addr() {
		t.Fatal("target not set")
	}
	if got, _ := c.roundTrip("2", 5*time.Second); got != "a:2" {
		t.Fatalf("open connection moved: %q", got)
	}
	c2 := dial(t, p.Addr())
	if got, _ := c2.roundTrip("3", 5*time.Second); got != "b:3" {
		t.Fatalf("new connection: %q", got)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	s := newEcho(t, "a")
	p, err := NewProxy(s.addr())
	if err != nil {
		t.Fatal(err)
	}
	open := dial(t, p.Addr())
	if _, err := open.roundTrip("x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	stalled := dial(t, p.Addr())
	if _, err := stalled.roundTrip("x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Partition()
	io.WriteString(stalled.c, "stuck\n")
	held := dial(t, p.Addr())
	io.WriteString(held.c, "held\n")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	for _, c := range []*client{open, stalled, held} {
		if _, err := c.read(5 * time.Second); err == nil || isTimeout(err) {
			t.Fatalf("after Close: %v, want the connection closed", err)
		}
	}
	// goleak (TestMain) checks that no proxy goroutine is left.
}

// ping checks whether from reaches to through the network.
func ping(t *testing.T, n *Network[int], from, to int) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.Addr(from, to), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := &client{c: c, r: bufio.NewReader(c)}
	got, err := cl.roundTrip("ping", 150*time.Millisecond)
	if err != nil {
		if !isTimeout(err) {
			t.Fatalf("%d->%d: %v", from, to, err)
		}
		return false
	}
	if want := string(rune('a'+to)) + ":ping"; got != want {
		t.Fatalf("%d->%d answered %q, want %q", from, to, got, want)
	}
	return true
}

func TestNetwork(t *testing.T) {
	targets := map[int]string{}
	for i := 0; i < 3; i++ {
		targets[i] = newEcho(t, string(rune('a'+i))).addr()
	}
	n, err := NewNetwork(targets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if got := n.Nodes(); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("nodes %v", got)
	}
	if n.Addr(1, 1) != "" || n.Proxy(0, 9) != nil {
		t.Fatal("a proxy to self or to an unknown node")
	}
	check := func(step string, want map[[2]int]bool) {
		t.Helper()
		for from := 0; from < 3; from++ {
			for to := 0; to < 3; to++ {
				if from == to {
					continue
				}
				reach, ok := want[[2]int{from, to}]
				if !ok {
					reach = true
				}
				if got := ping(t, n, from, to); got != reach {
					t.Errorf("%s: %d->%d reachable %v, want %v", step, from, to, got, reach)
				}
			}
		}
	}
	check("initial", nil)

	n.Isolate(0)
	check("isolate 0", map[[2]int]bool{{0, 1}: false, {1, 0}: false, {0, 2}: false, {2, 0}: false})
	n.HealAll()
	check("healed", nil)

	n.Partition([]int{0, 1}, []int{2})
	check("partition {0,1}|{2}", map[[2]int]bool{{0, 2}: false, {2, 0}: false, {1, 2}: false, {2, 1}: false})
	n.Heal(1, 2)
	check("heal 1-2", map[[2]int]bool{{0, 2}: false, {2, 0}: false})
	n.HealAll()

	n.PartitionOneWay(0, 1)
	check("one way 0->1", map[[2]int]bool{{0, 1}: false})
	n.HealAll()

	// A node added later is reachable both ways, and partitionable.
	d := newEcho(t, "d")
	if err := n.AddNode(3, d.addr()); err != nil {
		t.Fatal(err)
	}
	if err := n.AddNode(3, d.addr()); err == nil {
		t.Fatal("adding a node twice succeeded")
	}
	if !ping(t, n, 0, 3) || !ping(t, n, 3, 2) {
		t.Fatal("new node not reachable")
	}
	n.Isolate(3)
	if ping(t, n, 0, 3) || ping(t, n, 3, 2) {
		t.Fatal("isolated node reachable")
	}
	n.HealAll()

	// SetTarget redirects new connections to a node's new address.
	e := newEcho(t, string(rune('a'+2)))
	n.SetTarget(2, e.addr())
	if !ping(t, n, 0, 2) || e.accepted.Load() != 1 {
		t.Fatalf("SetTarget not followed: accepted %d", e.accepted.Load())
	}

	n.SetDelay(time.Millisecond)
	if !ping(t, n, 1, 0) {
		t.Fatal("delayed link does not forward")
	}
	if st := n.Stats(); st.Conns == 0 || st.Bytes == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := FreeAddrs(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s returned twice in %v", a, addrs)
		}
		seen[a] = true
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		l.Close()
		_, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		if lo := ephemeralLow(); lo > minPort+1000 && (p < minPort || p >= lo) {
			t.Errorf("%s: port outside [%d, %d), below the ephemeral range", a, minPort, lo)
		}
	}
}
