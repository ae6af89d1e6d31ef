// Package hashicorp will run Chronik's Raft groups on github.com/hashicorp/raft.
// Not implemented yet.
package hashicorp
