package netfault

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Network holds one Proxy per directed pair of nodes: node a reaches node b
// by dialing Addr(a, b), a proxy that forwards to b's real address. The
// proxy for (a, b) carries only the connections a opens to b, so what a
// partition of it cuts depends on how the system under test dials: with a
// transport where each node sends its own messages over the connections it
// dials (as Chronik's consensus transport does), PartitionOneWay(a, b) stops
// a's messages to b and leaves b's messages to a flowing.
//
// N is the node identifier type (for example consensus.NodeID). Methods
// are safe for concurrent use.
type Network[N cmp.Ordered] struct {
	mu      sync.Mutex
	targets map[N]string
	proxies map[link[N]]*Proxy
	delay   time.Duration
	closed  bool
}

type link[N cmp.Ordered] struct{ from, to N }

// NewNetwork builds the proxies between every two of the nodes in targets
// (node -> its real listen address). The caller must Close it.
func NewNetwork[N cmp.Ordered](targets map[N]string) (*Network[N], error) {
	n := &Network[N]{targets: map[N]string{}, proxies: map[link[N]]*Proxy{}}
	for _, id := range sortedKeys(targets) {
		if err := n.AddNode(id, targets[id]); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// AddNode adds a node reachable at target and the proxies between it and
// every node already present. Adding a node twice is an error.
func (n *Network[N]) AddNode(id N, target string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("netfault: network closed")
	}
	if _, ok := n.targets[id]; ok {
		return fmt.Errorf("netfault: node %v already present", id)
	}
	for _, other := range sortedKeys(n.targets) {
		for _, l := range []link[N]{{id, other}, {other, id}} {
			p, err := NewProxy(n.targetOf(l.to, id, target))
			if err != nil {
				return err
			}
			p.SetDelay(n.delay)
			n.proxies[l] = p
		}
	}
	n.targets[id] = target
	return nil
}

func (n *Network[N]) targetOf(to, newID N, newTarget string) string {
	if to == newID {
		return newTarget
	}
	return n.targets[to]
}

// SetTarget changes the real address of node id (say, after a restart on a
// new port); the proxies towards it forward new connections there.
func (n *Network[N]) SetTarget(id N, target string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.targets[id]; !ok {
		return
	}
	n.targets[id] = target
	for l, p := range n.proxies {
		if l.to == id {
			p.SetTarget(target)
		}
	}
}

// Nodes lists the nodes in order.
func (n *Network[N]) Nodes() []N {
	n.mu.Lock()
	defer n.mu.Unlock()
	return sortedKeys(n.targets)
}

// Addr is the address from dials to reach to ("" if either is unknown or
// they are the same node).
func (n *Network[N]) Addr(from, to N) string {
	if p := n.Proxy(from, to); p != nil {
		return p.Addr()
	}
	return ""
}

// Proxy is the proxy carrying from's connections to to, or nil.
func (n *Network[N]) Proxy(from, to N) *Proxy {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proxies[link[N]{from, to}]
}

// Isolate partitions every link from and to node id.
func (n *Network[N]) Isolate(id N) {
	n.each(func(l link[N], p *Proxy) {
		if l.from == id || l.to == id {
			p.Partition()
		}
	})
}

// Partition cuts every link between a node of a and a node of b, in both
// directions. Links within a group are untouched.
func (n *Network[N]) Partition(a, b []N) {
	n.each(func(l link[N], p *Proxy) {
		if (slices.Contains(a, l.from) && slices.Contains(b, l.to)) ||
			(slices.Contains(b, l.from) && slices.Contains(a, l.to)) {
			p.Partition()
		}
	})
}

// PartitionOneWay cuts only the link carrying from's connections to to.
func (n *Network[N]) PartitionOneWay(from, to N) {
	if p := n.Proxy(from, to); p != nil {
		p.Partition()
	}
}

// Heal heals the links between a and b in both directions.
func (n *Network[N]) Heal(a, b N) {
	for _, l := range []link[N]{{a, b}, {b, a}} {
		if p := n.Proxy(l.from, l.to); p != nil {
			p.Heal()
		}
	}
}

// HealAll heals every link.
func (n *Network[N]) HealAll() {
	n.each(func(_ link[N], p *Proxy) { p.Heal() })
}

// SetDelay sets the added latency of every link, and of links added later.
func (n *Network[N]) SetDelay(d time.Duration) {
	n.mu.Lock()
	n.delay = d
	n.mu.Unlock()
	n.each(func(_ link[N], p *Proxy) { p.SetDelay(d) })
}

// Stats sums the counters of every proxy.
func (n *Network[N]) Stats() Stats {
	var s Stats
	n.each(func(_ link[N], p *Proxy) { s = s.Add(p.Stats()) })
	return s
}

// Close closes every proxy and waits for their goroutines.
func (n *Network[N]) Close() error {
	n.mu.Lock()
	n.closed = true
	ps := make([]*Proxy, 0, len(n.proxies))
	for _, p := range n.proxies {
		ps = append(ps, p)
	}
	n.mu.Unlock()
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// each calls f for every proxy, outside the network's lock.
func (n *Network[N]) each(f func(link[N], *Proxy)) {
	n.mu.Lock()
	type lp struct {
		l link[N]
		p *Proxy
	}
	ps := make([]lp, 0, len(n.proxies))
	for l, p := range n.proxies {
		ps = append(ps, lp{l, p})
	}
	n.mu.Unlock()
	for _, x := range ps {
		f(x.l, x.p)
	}
}

func sortedKeys[N cmp.Ordered, V any](m map[N]V) []N {
	ks := make([]N, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
