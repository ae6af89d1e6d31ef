package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/chronik-go/chronik/core/broker"
)

// Mux is where RegisterDebug puts its handlers: *telemetry.Telemetry (the
// metrics listener) in the chronik binary, an *http.ServeMux in tests.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// The debug endpoints, served when telemetry.debug is on.
const (
	// DebugReplicasPath answers GET with a JSON array of the replicas this
	// broker hosts, sorted by topic and partition:
	// {"topic","partition","leader","term","start_offset","next_offset",
	// "first_index","serving","ready_term","raft_role","raft_leader",
	// "raft_term","raft_commit","raft_applied"}.
	DebugReplicasPath = "/debug/chronik/replicas"
	// DebugReplicaPath answers GET ?topic=T&partition=P with the bytes of
	// this broker's replica of T-P (broker.ReplicaRecords: whole record
	// batches from the log start to the applied end) and its state in the
	// Chronik-Leader, Chronik-Term, Chronik-Start-Offset,
	// Chronik-Next-Offset and Chronik-First-Index headers. A missing or
	// malformed parameter is a 400, a partition not hosted here a 404.
	DebugReplicaPath = "/debug/chronik/replica"
	// DebugPprofPath serves the Go runtime's profiles (net/http/pprof):
	// goroutine?debug=2 is the dump a stuck broker is diagnosed with.
	DebugPprofPath = "/debug/pprof/"
)

// RegisterDebug serves the debug endpoints (DebugReplicasPath,
// DebugReplicaPath, DebugPprofPath) on mux if the node's config has telemetry.debug on, and
// reports whether it did. They show record data without any authorization:
// they are for fault-injection checkers that compare replicas across
// brokers. Call it once per mux, after Start; after Shutdown the endpoints
// answer with errors.
func (n *Node) RegisterDebug(mux Mux) bool {
	return n.registerDebug(mux, n.Broker)
}

func (n *Node) registerDebug(mux Mux, b replicaReader) bool {
	if !n.debug {
		return false
	}
	d := &debugHandler{node: n.id, b: b, log: n.log}
	mux.Handle("GET "+DebugReplicasPath, http.HandlerFunc(d.replicas))
	mux.Handle("GET "+DebugReplicaPath, http.HandlerFunc(d.replica))
	mux.Handle("GET "+DebugPprofPath, http.HandlerFunc(pprof.Index))
	mux.Handle("GET "+DebugPprofPath+"cmdline", http.HandlerFunc(pprof.Cmdline))
	mux.Handle("GET "+DebugPprofPath+"profile", http.HandlerFunc(pprof.Profile))
	mux.Handle("GET "+DebugPprofPath+"symbol", http.HandlerFunc(pprof.Symbol))
	mux.Handle("GET "+DebugPprofPath+"trace", http.HandlerFunc(pprof.Trace))
	n.log.Warn("debug endpoints on: replica contents and profiles are served without authorization",
		"paths", []string{DebugReplicasPath, DebugReplicaPath, DebugPprofPath})
	return true
}

// replicaReader is what the debug endpoints read; *broker.Broker is one.
type replicaReader interface {
	HostedReplicas() ([]broker.HostedReplica, error)
	ReplicaRecords(topic string, part int32) ([]byte, broker.ReplicaState, error)
}

type debugHandler struct {
	node int32
	b    replicaReader
	log  *slog.Logger
}

// debugReplica is one element of the DebugReplicasPath answer.
type debugReplica struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Leader      uint64 `json:"leader"` // 0: none known
	Term        uint64 `json:"term"`
	StartOffset int64  `json:"start_offset"`
	NextOffset  int64  `json:"next_offset"`
	FirstIndex  uint64 `json:"first_index"`
	Serving     bool   `json:"serving"`
	ReadyTerm   uint64 `json:"ready_term"`
	// What the consensus group itself says (Leader and Term above are what
	// it delivered to the partition, which may lag).
	Role          string `json:"raft_role"`
	RaftLeader    uint64 `json:"raft_leader"`
	RaftTerm      uint64 `json:"raft_term"`
	RaftCommitted uint64 `json:"raft_commit"`
	RaftApplied   uint64 `json:"raft_applied"`
}

func (d *debugHandler) replicas(w http.ResponseWriter, _ *http.Request) {
	hosted, err := d.b.HostedReplicas()
	if err != nil {
		d.fail(w, fmt.Errorf("list replicas: %w", err))
		return
	}
	out := make([]debugReplica, 0, len(hosted))
	for _, h := range hosted {
		out = append(out, debugReplica{
			Topic: h.Topic, Partition: h.Partition, Leader: uint64(h.Leader), Term: h.Term,
			StartOffset: h.StartOffset, NextOffset: h.NextOffset, FirstIndex: h.FirstIndex,
			Serving: h.Serving, ReadyTerm: h.ReadyTerm,
			Role: h.Consensus.Role.String(), RaftLeader: uint64(h.Consensus.Leader), RaftTerm: h.Consensus.Term,
			RaftCommitted: h.Consensus.Commit, RaftApplied: h.Consensus.Applied,
		})
	}
	body, err := json.Marshal(out)
	if err != nil {
		d.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(body, '\n'))
}

func (d *debugHandler) replica(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	topic := q.Get("topic")
	if topic == "" {
		http.Error(w, "want ?topic=T&partition=P: topic is missing", http.StatusBadRequest)
		return
	}
	ps := q.Get("partition")
	p, err := strconv.ParseInt(ps, 10, 32)
	if err != nil || p < 0 {
		http.Error(w, fmt.Sprintf("want ?topic=T&partition=P: partition %q is not a partition number", ps), http.StatusBadRequest)
		return
	}
	recs, st, err := d.b.ReplicaRecords(topic, int32(p))
	if errors.Is(err, broker.ErrNotHosted) {
		http.Error(w, fmt.Sprintf("partition %s-%d is not hosted on broker %d", topic, p, d.node), http.StatusNotFound)
		return
	}
	if err != nil {
		d.fail(w, fmt.Errorf("read replica %s-%d: %w", topic, p, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(recs)))
	h.Set("Chronik-Leader", strconv.FormatUint(uint64(st.Leader), 10))
	h.Set("Chronik-Term", strconv.FormatUint(st.Term, 10))
	h.Set("Chronik-Start-Offset", strconv.FormatInt(st.StartOffset, 10))
	h.Set("Chronik-Next-Offset", strconv.FormatInt(st.NextOffset, 10))
	h.Set("Chronik-First-Index", strconv.FormatUint(st.FirstIndex, 10))
	_, _ = w.Write(recs)
}

// fail answers 500 with err, which is logged too.
func (d *debugHandler) fail(w http.ResponseWriter, err error) {
	d.log.Warn("debug endpoint", "err", err)
	http.Error(w, err.Error(), http.StatusInternalServerError)
}
