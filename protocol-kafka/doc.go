// Package kafka serves the Kafka wire protocol on franz-go's kmsg, on top
// of a protocol.Host (the broker).
//
// NewFactory builds the "kafka" protocol component; Create starts listening
// and returns the running Server. Each API key lives in its own file named
// after it (00_produce.go, 01_fetch.go, ...), which registers the version
// range it fully encodes; ApiVersions advertises exactly those ranges.
//
// # Connections
//
// A connection's requests may be pipelined. They are read one frame at a
// time: the 4-byte size is checked against socket_request_max_bytes
// before anything is allocated, the header and body are decoded with kmsg,
// and the request is handled on its own goroutine, at most
// max_inflight_per_connection at once. Responses are written strictly in
// request order. Requests that change state (Produce, InitProducerID,
// CreateTopics, DeleteTopics, CreatePartitions) additionally reach the Host
// one after another in request order, because Kafka clients rely on a
// connection's writes taking effect in order (idempotent sequences).
//
// As Kafka does, the server closes the connection, after writing the
// responses to earlier requests, on: a frame larger than the cap, an API
// key or version it does not serve (except ApiVersions, answered per
// KIP-511 with a v0 response carrying UNSUPPORTED_VERSION and the
// supported ranges), a malformed or truncated request, a failed acks=0
// produce, and a panic while handling a request (logged with its stack).
//
// # What the Host is asked
//
// Host calls get the connection's context, canceled by Server.Shutdown.
// Per-partition work (Produce, ListOffsets) is fanned out concurrently;
// responses keep the request's order. Fetch sessions (KIP-227) are not
// kept: every fetch response carries session id 0, so clients send full
// fetches. Topic ids (Fetch v13+, Metadata v10+, DeleteTopics v6) are
// resolved to names through Host.Metadata. All responses carry throttle 0.
//
// # Telemetry
//
// Per-API request counts and latencies, open connections and protocol
// errors are recorded with the meter from component.Settings, and each
// request runs in a server span of its tracer (see telemetry).
package kafka
