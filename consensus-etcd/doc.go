// Package etcd runs Chronik Raft groups on go.etcd.io/raft/v3.
package etcd
