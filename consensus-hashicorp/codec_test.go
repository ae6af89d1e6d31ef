package hashicorp

import (
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestCodecRoundTrip checks that every hand-encoded message decodes to
// what was encoded.
func TestCodecRoundTrip(t *testing.T) {
	h := raft.RPCHeader{ProtocolVersion: 3, ID: []byte("1"), Addr: []byte("1")}
	at := time.Unix(0, 1_700_000_000_123_456_789)
	cases := []struct {
		in  any
		out any
	}{
		{&raft.AppendEntriesRequest{RPCHeader: h, Term: 7, Leader: []byte("2"), PrevLogEntry: 41, PrevLogTerm: 6, LeaderCommitIndex: 40,
			Entries: []*raft.Log{
				{Index: 42, Term: 7, Type: raft.LogCommand, Data: []byte("data"), Extensions: []byte{1, 2}, AppendedAt: at},
				{Index: 43, Term: 7, Type: raft.LogNoop},
			}}, &raft.AppendEntriesRequest{}},
		{&raft.AppendEntriesRequest{RPCHeader: h, Term: 7}, &raft.AppendEntriesRequest{}},
		{&raft.AppendEntriesResponse{RPCHeader: h, Term: 7, LastLog: 43, Success: true, NoRetryBackoff: true}, &raft.AppendEntriesResponse{}},
		{&raft.RequestVoteRequest{RPCHeader: h, Term: 8, Candidate: []byte("3"), LastLogIndex: 43, LastLogTerm: 7, LeadershipTransfer: true}, &raft.RequestVoteRequest{}},
		{&raft.RequestVoteResponse{RPCHeader: h, Term: 8, Granted: true}, &raft.RequestVoteResponse{}},
		{&raft.RequestPreVoteRequest{RPCHeader: h, Term: 9, LastLogIndex: 43, LastLogTerm: 7}, &raft.RequestPreVoteRequest{}},
		{&raft.RequestPreVoteResponse{RPCHeader: h, Term: 9, Granted: true}, &raft.RequestPreVoteResponse{}},
		{&raft.TimeoutNowRequest{RPCHeader: h}, &raft.TimeoutNowRequest{}},
		{&raft.TimeoutNowResponse{RPCHeader: h}, &raft.TimeoutNowResponse{}},
		{&raft.InstallSnapshotRequest{RPCHeader: h, SnapshotVersion: 1, Term: 9, LastLogIndex: 50, LastLogTerm: 9, Size: 10}, &raft.InstallSnapshotRequest{}},
	}
	for _, c := range cases {
		b, err := appendBody(nil, c.in)
		if err != nil {
			t.Fatalf("%T: encode: %v", c.in, err)
		}
		if err := decodeBody(b, c.out); err != nil {
			t.Fatalf("%T: decode: %v", c.in, err)
		}
		if !reflect.DeepEqual(c.in, c.out) {
			t.Errorf("%T: got %+v, want %+v", c.in, c.out, c.in)
		}
		if len(b) > 1 {
			if err := decodeBody(b[:len(b)-1], reflect.New(reflect.TypeOf(c.in).Elem()).Interface()); err == nil {
				t.Errorf("%T: a truncated body decodes", c.in)
			}
		}
	}
}
