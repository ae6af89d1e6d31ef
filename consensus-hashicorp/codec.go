package hashicorp

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// The bodies of the frequent messages (appends and heartbeats, votes,
// pre-votes, timeout-now, and their answers) are encoded by hand: fields in
// declaration order as uvarints, length-prefixed byte strings and single
// bytes for booleans. The library's msgpack codec works by reflection and
// was the largest cost of an idle group (a heartbeat and its answer every
// HeartbeatTimeout/10 per follower), several times more so under the race
// detector. Rare messages (a snapshot's request) still use msgpack.

var mh = &codec.MsgpackHandle{}

func putBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func putHeader(b []byte, h *raft.RPCHeader) []byte {
	b = binary.AppendUvarint(b, uint64(h.ProtocolVersion))
	b = appendBytes(b, h.ID)
	return appendBytes(b, h.Addr)
}

func putLog(b []byte, l *raft.Log) []byte {
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	b = appendBytes(b, l.Data)
	b = appendBytes(b, l.Extensions)
	var at uint64
	if !l.AppendedAt.IsZero() {
		at = uint64(l.AppendedAt.UnixNano())
	}
	return binary.AppendUvarint(b, at)
}

// appendBody appends the encoding of v to b.
func appendBody(b []byte, v any) ([]byte, error) {
	switch m := v.(type) {
	case *raft.AppendEntriesRequest:
		b = putHeader(b, &m.RPCHeader)
		b = binary.AppendUvarint(b, m.Term)
		b = appendBytes(b, m.Leader)
		b = binary.AppendUvarint(b, m.PrevLogEntry)
		b = binary.AppendUvarint(b, m.PrevLogTerm)
		b = binary.AppendUvarint(b, m.LeaderCommitIndex)
		b = binary.AppendUvarint(b, uint64(len(m.Entries)))
		for _, l := range m.Entries {
			b = putLog(b, l)
		}
	case *raft.AppendEntriesResponse:
		b = putHeader(b, &m.RPCHeader)
		b = binary.AppendUvarint(b, m.Term)
		b = binary.AppendUvarint(b, m.LastLog)
		b = putBool(b, m.Success)
		b = putBool(b, m.NoRetryBackoff)
	case *raft.RequestVoteRequest:
		b = putHeader(b, &m.RPCHeader)
		b = binary.AppendUvarint(b, m.Term)
		b = appendBytes(b, m.Candidate)
		b = binary.AppendUvarint(b, m.LastLogIndex)
		b = binary.AppendUvarint(b, m.LastLogTerm)
		b = putBool(b, m.LeadershipTransfer)
	case *raft.RequestVoteResponse:
		b = putHeader(b, &m.RPCHeader)
		b = binary.AppendUvarint(b, m.Term)
		b = appendBytes(b, m.Peers)
		b = putBool(b, m.Granted)
	case *raft.RequestPreVoteRequest:
		b = putHeader(b, &m.RPCHeader)
		b = binary.AppendUvarint(b, m.Term)
		b = binary.AppendUvarint(b, m.LastLogIndex)
		b = binary.AppendUvarint(b, m.LastLogTerm)
	case *raft.RequestPreVoteResponse:
		b = putHeader(b, &m.RPCHeader)
		b = binary.AppendUvarint(b, m.Term)
		b = putBool(b, m.Granted)
	case *raft.TimeoutNowRequest:
		b = putHeader(b, &m.RPCHeader)
	case *raft.TimeoutNowResponse:
		b = putHeader(b, &m.RPCHeader)
	default:
		var body []byte
		if err := codec.NewEncoderBytes(&body, mh).Encode(v); err != nil {
			return nil, err
		}
		b = append(b, body...)
	}
	return b, nil
}

func (d *decoder) bool() bool { return d.byte() != 0 }

// own returns a decoded byte string, nil for an empty one. It shares the
// message's buffer, which the transport hands over to its handler.
func (d *decoder) own() []byte {
	v := d.bytes()
	if len(v) == 0 {
		return nil
	}
	return v
}

func (d *decoder) header(h *raft.RPCHeader) {
	h.ProtocolVersion = raft.ProtocolVersion(d.uvarint())
	h.ID = d.own()
	h.Addr = d.own()
}

func (d *decoder) log() *raft.Log {
	l := &raft.Log{Index: d.uvarint(), Term: d.uvarint(), Type: raft.LogType(d.byte())}
	l.Data = d.own()
	l.Extensions = d.own()
	if at := d.uvarint(); at != 0 {
		l.AppendedAt = time.Unix(0, int64(at))
	}
	return l
}

// decodeBody decodes body (encoded by appendBody) into v.
func decodeBody(body []byte, v any) error {
	d := decoder{b: body}
	switch m := v.(type) {
	case *raft.AppendEntriesRequest:
		d.header(&m.RPCHeader)
		m.Term = d.uvarint()
		m.Leader = d.own()
		m.PrevLogEntry, m.PrevLogTerm, m.LeaderCommitIndex = d.uvarint(), d.uvarint(), d.uvarint()
		n := d.uvarint()
		if n > uint64(len(d.b)) { // each entry takes several bytes
			return fmt.Errorf("append request: %d entries in %d bytes", n, len(d.b))
		}
		if n > 0 {
			m.Entries = make([]*raft.Log, 0, n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			m.Entries = append(m.Entries, d.log())
		}
	case *raft.AppendEntriesResponse:
		d.header(&m.RPCHeader)
		m.Term, m.LastLog = d.uvarint(), d.uvarint()
		m.Success, m.NoRetryBackoff = d.bool(), d.bool()
	case *raft.RequestVoteRequest:
		d.header(&m.RPCHeader)
		m.Term = d.uvarint()
		m.Candidate = d.own()
		m.LastLogIndex, m.LastLogTerm = d.uvarint(), d.uvarint()
		m.LeadershipTransfer = d.bool()
	case *raft.RequestVoteResponse:
		d.header(&m.RPCHeader)
		m.Term = d.uvarint()
		m.Peers = d.own()
		m.Granted = d.bool()
	case *raft.RequestPreVoteRequest:
		d.header(&m.RPCHeader)
		m.Term, m.LastLogIndex, m.LastLogTerm = d.uvarint(), d.uvarint(), d.uvarint()
	case *raft.RequestPreVoteResponse:
		d.header(&m.RPCHeader)
		m.Term = d.uvarint()
		m.Granted = d.bool()
	case *raft.TimeoutNowRequest:
		d.header(&m.RPCHeader)
	case *raft.TimeoutNowResponse:
		d.header(&m.RPCHeader)
	default:
		return codec.NewDecoderBytes(body, mh).Decode(v)
	}
	if d.err != nil {
		return fmt.Errorf("%T: %w", v, d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%T: %d trailing bytes", v, len(d.b))
	}
	return nil
}
