package netfault

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreeAddrs returns n distinct loopback addresses (127.0.0.1:port) that
// were free a moment ago: each port is held by a listener until all n are
// chosen, then released for the caller to bind.
//
// The ports are drawn below the kernel's ephemeral range (Linux's
// ip_local_port_range) when there is room there: a port the kernel hands
// out as the source of an outgoing connection (the brokers dialing each
// other, clients, proxies) can otherwise land on one that is reserved but
// not yet bound, and the server that binds it later fails with "address
// already in use". Elsewhere, or when no port below the range is free,
// the kernel picks (port 0).
func FreeAddrs(n int) ([]string, error) {
	out := make([]string, 0, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	lo := ephemeralLow()
	for range n {
		var l net.Listener
		if lo > minPort+1000 {
			for range 64 {
				p := minPort + rand.IntN(lo-minPort)
				if c, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
					l = c
					break
				}
			}
		}
		if l == nil {
			var err error
			if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				return nil, fmt.Errorf("netfault: pick a free loopback port: %w", err)
			}
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// minPort is the lowest port FreeAddrs draws: above the well-known and most
// registered service ports.
const minPort = 10000

// ephemeralLow is the first port of the kernel's ephemeral range, or 0 when
// it cannot be read (not Linux).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}
