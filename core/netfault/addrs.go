package netfault

import (
	"fmt"
	"net"
)

// FreeAddrs returns n distinct loopback addresses (127.0.0.1:port) that
// were free a moment ago: each port is held by a listener until all n are
// chosen, then released for the caller to bind. Another process may take
// one in between; callers that start servers on them should be ready to
// retry.
func FreeAddrs(n int) ([]string, error) {
	out := make([]string, 0, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("netfault: pick a free loopback port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}
