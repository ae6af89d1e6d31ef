// Package netfault injects network faults into loopback tests: a Proxy
// forwards TCP connections to one target and can partition, delay or reset
// them; a Network holds one Proxy per directed pair of nodes and partitions
// nodes and groups of nodes from each other.
//
// # Use
//
//  1. Start the servers under test, each on 127.0.0.1:0.
//  2. NewNetwork with their real addresses; give each node, as the address
//     of peer p, Network.Addr(node, p): node's own proxy to p.
//  3. Inject faults (Isolate, Partition, PartitionOneWay, SetDelay, and on a
//     single Proxy SetDrop and Reset); HealAll undoes partitions
//     (resetting the connections that were cut).
//  4. Close the Network once the servers are stopped. Close ends every
//     goroutine the package started.
//
// # What a partition looks like
//
// A partitioned link is a blackhole, as when every packet is lost, not a
// refused or closed connection: open connections stay open and stall (no
// byte passes in either direction; the sender's writes fill the buffers and
// then block), and new connections are accepted but not forwarded, so their
// handshakes hang. Nothing is closed by a partition, so a client does not
// get a fast failure to retry on; its own keepalives and deadlines are what
// notice.
//
// Heal ends it as a long outage ends: the connections that lived through
// the partition are reset and whatever was sent on them meanwhile is lost,
// so clients reconnect (and, say, a Raft follower cut off during a log
// compaction really has missed those entries). Proxy.Resume ends it as a
// short outage ends instead: the stalled bytes are delivered late.
//
// A stopped target looks like a refused connection: the proxy accepts,
// fails to dial and closes the client's connection.
package netfault
