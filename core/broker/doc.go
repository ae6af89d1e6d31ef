// Package broker is Chronik's broker logic: partitions as Raft groups, the
// cluster metadata group, offsets, idempotent producers, and the Host
// services a protocol server calls.
package broker
