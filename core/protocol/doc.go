// Package protocol defines what a wire protocol server (protocol-kafka) is to
// the broker, and the services the broker offers it (Host).
//
// The broker speaks Kafka's semantics: topics, partitions, offsets, record
// batches in Kafka's v2 format, Kafka error codes. It does not depend on any
// Kafka library: a protocol server decodes requests into the types here,
// calls the Host, and encodes the results. The Host is safe for concurrent
// use; every call that can block takes a context.
package protocol
