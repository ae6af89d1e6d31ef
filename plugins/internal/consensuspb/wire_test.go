package consensuspb

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

func callRequests() []*CallRequest {
	return []*CallRequest{
		{},
		{Id: 1, Group: 7, TimeoutNs: 5e9, Op: &CallRequest_Propose{Propose: []byte("batch")}},
		{Id: 2, Group: 1 << 40, Op: &CallRequest_Propose{Propose: []byte{}}},
		{Id: 3, Group: 2, Op: &CallRequest_ReadBarrier{ReadBarrier: 9}},
	}
}

// The codec's CallRequest is protobuf's: each side reads what the other
// wrote.
func TestCallRequestWire(t *testing.T) {
	for _, m := range callRequests() {
		bs, err := Codec{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var got CallRequest
		if err := proto.Unmarshal(bs.Materialize(), &got); err != nil {
			t.Fatalf("%v: proto cannot read the codec's: %v", m, err)
		}
		if !proto.Equal(&got, m) {
			t.Errorf("codec wrote %v, proto read %v", m, &got)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back CallRequest
		if err := unmarshalCallRequest(b, &back); err != nil {
			t.Fatalf("%v: the codec cannot read proto's: %v", m, err)
		}
		if !proto.Equal(&back, m) {
			t.Errorf("proto wrote %v, codec read %v", m, &back)
		}
	}
}

// FuzzCallRequest: any bytes decode to an error or to what protobuf reads
// (less the fields it does not know).
func FuzzCallRequest(f *testing.F) {
	for _, m := range callRequests() {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want CallRequest
		err := unmarshalCallRequest(b, &got)
		perr := proto.Unmarshal(b, &want)
		want.ProtoReflect().SetUnknown(nil) // the codec skips unknown fields
		if err == nil && perr == nil && !proto.Equal(&got, &want) {
			t.Fatalf("codec read %v, proto %v", &got, &want)
		}
	})
}
