// Package memory is a storage.Store held in memory: nothing survives Close
// or the process. It is for tests and ephemeral brokers, and it is the
// reference the storagetest conformance suite is checked against.
//
// The store copies every entry and state blob it is given and every one it
// hands out, so callers own their buffers before and after each call. One
// lock guards the whole store: a Write is applied to all its groups at once,
// readers never see half of it.
package memory
