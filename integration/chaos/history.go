package chaos

import "time"

// Outcome is what a producer learned of one send.
type Outcome int

const (
	// OK: acknowledged (acks=all) at Send.Offset.
	OK Outcome = iota
	// Failed: the broker or the client refused the record before it could
	// have been written (a non-retriable error code for its batch, or a
	// client-side refusal). It must never become visible.
	Failed
	// Unknown: the send timed out or its connection broke; it may or may
	// not have been written, at most once.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	default:
		return "unknown"
	}
}

// Send is one produced record and what became of it.
type Send struct {
	Producer int
	// Session counts the producer's client incarnations (0 for the first):
	// a producer whose client got stuck closes it and starts another, with
	// a new producer id, and order is promised only within one session.
	Session   int
	Seq       int64 // the producer's sequence number, 0, 1, ...
	Value     string
	Partition int32
	Start     time.Time // handed to the client
	End       time.Time // promise called
	Outcome   Outcome
	Offset    int64 // when OK
	Err       string
}

// Observation is one record a consumer read.
type Observation struct {
	Reader    string // "assign-0", "group-1", "drain", ...
	Partition int32
	Offset    int64
	Value     string
	At        time.Time
}

// HWM is one high watermark a fetch returned. Start and End bound the
// fetch, so that real-time order between two observations is known only
// when one ended before the other started.
type HWM struct {
	Reader     string
	Partition  int32
	HWM        int64
	Start, End time.Time
}

// Commit is the committed offset of a group on one partition, as one
// OffsetFetch between Start and End returned it (-1: none yet).
type Commit struct {
	Group      string
	Partition  int32
	Offset     int64
	Start, End time.Time
}

// Replica is the log of one replica of a partition once the cluster healed
// and every replica caught up: the raw record batches of [Start, Next).
type Replica struct {
	Broker    int32
	Partition int32
	Leader    int32
	Term      uint64
	Start     int64
	Next      int64
	Bytes     []byte
}

// Fault is one fault the schedule injected, from Start to End (End is zero
// for a fault that never ended, which the run reports as an error).
type Fault struct {
	Kind    string // kill, pause, partition, latency, powerloss, plugin-kill
	Detail  string // e.g. "broker 2", "{1} | {2,3}", "1 -> 3"
	Brokers []int32
	Start   time.Time
	End     time.Time
	// Led are the partitions the faulted brokers led when it started (for
	// kill, pause, powerloss, plugin-kill): their failover time is measured.
	Led []int32
	// Plugin is, for a plugin-kill, the plugin killed: PluginStorage or
	// PluginConsensus.
	Plugin string
	// Exit is, for a plugin-kill, how the broker exited once its plugin
	// was gone: "exit 1", "panic", ...
	Exit string
	// Elected is when metadata first named a leader other than the
	// faulted brokers for every Led partition (zero if not during the
	// fault).
	Elected time.Time
}

// DrainRecord is one record of a partition's final contents.
type DrainRecord struct {
	Offset int64
	Value  string
}

// History is everything a run recorded, the input of Check.
type History struct {
	Topic        string
	Partitions   int32
	Start, End   time.Time // of the workload
	Sends        []Send
	Observations []Observation
	HWMs         []HWM
	Commits      []Commit
	Faults       []Fault
	// Drain is each partition's contents, read from the start to the end
	// offset after the cluster healed.
	Drain map[int32][]DrainRecord
	// DrainEnds is each partition's end offset the drain read up to (a
	// partition missing here ends after its last drained record).
	DrainEnds map[int32]int64
	// Replicas are each partition's replica logs (nil when the cluster
	// could not report them, for example in-process with storage-memory).
	Replicas map[int32][]Replica
	// Elections is the number of leader elections during the run: the sum
	// over partitions (and the metadata group) of the leader epoch gained.
	Elections int64
}
