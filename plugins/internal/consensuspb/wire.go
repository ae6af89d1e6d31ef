package consensuspb

import (
	"fmt"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/chronik-go/chronik/plugins/internal/storagepb"
)

// Codec is the gRPC codec of the plugin connections: storagepb.Codec, and
// CallRequest written by hand in protobuf's wire format, so that a
// proposal's data goes out as it is (no copy through a pooled buffer) and
// comes in aliasing the buffer the message is received into.
type Codec struct{ storagepb.Codec }

func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*CallRequest); ok {
		return marshalCallRequest(m), nil
	}
	return c.Codec.Marshal(v)
}

func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*CallRequest); ok {
		return unmarshalCallRequest(data.Materialize(), m)
	}
	return c.Codec.Unmarshal(data, v)
}

func marshalCallRequest(m *CallRequest) mem.BufferSlice {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   uint64
	}{{1, m.Id}, {2, m.Group}, {3, uint64(m.TimeoutNs)}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, f.v)
		}
	}
	switch op := m.Op.(type) {
	case *CallRequest_ReadBarrier:
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, op.ReadBarrier)
	case *CallRequest_Propose:
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(op.Propose)))
		if len(op.Propose) > 0 {
			return mem.BufferSlice{mem.SliceBuffer(b), mem.SliceBuffer(op.Propose)}
		}
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}
}

func unmarshalCallRequest(b []byte, m *CallRequest) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("CallRequest: malformed tag")
		}
		b = b[n:]
		switch {
		case num >= 1 && num <= 3 || num == 5:
			if typ != protowire.VarintType {
				return fmt.Errorf("CallRequest: field %d: wire type %d", num, typ)
			}
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("CallRequest: field %d: malformed varint", num)
			}
			switch num {
			case 1:
				m.Id = v
			case 2:
				m.Group = v
			case 3:
				m.TimeoutNs = int64(v)
			case 5:
				m.Op = &CallRequest_ReadBarrier{ReadBarrier: v}
			}
			b = b[n:]
		case num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("CallRequest: field 4: malformed bytes")
			}
			if v == nil {
				v = []byte{}
			}
			m.Op = &CallRequest_Propose{Propose: v[:len(v):len(v)]}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("CallRequest: field %d: malformed", num)
			}
			b = b[n:]
		}
	}
	return nil
}
