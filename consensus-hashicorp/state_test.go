package hashicorp

import (
	"bytes"
	"strings"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	in := &groupState{
		stable: map[string][]byte{"CurrentTerm": {0, 0, 0, 0, 0, 0, 0, 7}, "LastVoteCand": []byte("2")},
		snap:   &snapRecord{version: 1, index: 40, term: 3, conf: []byte("conf"), confIndex: 1, smIndex: 22, smTerm: 2, smData: []byte("data")},
	}
	out, err := decodeState(encodeState(in))
	if err != nil {
		t.Fatal(err)
	}
	if out.snap == nil {
		t.Fatalf("snapshot lost: %+v", out.snap)
	}
	if out.snap.smIndex != 22 || out.snap.smTerm != 2 || !bytes.Equal(out.snap.smData, []byte("data")) || out.snap.index != 40 {
		t.Errorf("snapshot %+v", out.snap)
	}
	if !bytes.Equal(out.stable["LastVoteCand"], []byte("2")) || len(out.stable) != 2 {
		t.Errorf("stable %v", out.stable)
	}
}

// A group written by consensus-etcd is refused with an error naming both.
func TestStateOfOtherBackend(t *testing.T) {
	_, err := decodeState([]byte("ETR1\x00\x00"))
	if err == nil || !strings.Contains(err.Error(), "etcd") || !strings.Contains(err.Error(), "hashicorp") {
		t.Fatalf("decodeState of an etcd blob: %v", err)
	}
}
