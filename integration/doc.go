// Package integration holds the multi-broker tests that drive Chronik with
// real Kafka clients.
package integration
