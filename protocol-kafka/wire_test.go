package kafka

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Helpers to talk to the server frame by frame.

var formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID("wire-test"))

// frame encodes req at version v with correlation id corr.
func frame(req kmsg.Request, v int16, corr int32) []byte {
	req.SetVersion(v)
	return formatter.AppendRequest(nil, req, corr)
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// A guard against a hung test, not a timing assertion.
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	return c
}

func send(t *testing.T, c net.Conn, frames ...[]byte) {
	t.Helper()
	if _, err := c.Write(slices.Concat(frames...)); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads one response frame: its correlation id and the rest.
func readFrame(c net.Conn) (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:], nil
}

// recv reads the response to req (encoded at version v) and checks its
// correlation id.
func recv[R kmsg.Response](t *testing.T, c net.Conn, req kmsg.Request, corr int32) R {
	t.Helper()
	got, b, err := readFrame(c)
	if err != nil {
		t.Fatalf("reading response %d: %v", corr, err)
	}
	if got != corr {
		t.Fatalf("response correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		b = b[1:] // empty header tags
	}
	if err := resp.ReadFrom(b); err != nil {
		t.Fatalf("decoding response %d: %v", corr, err)
	}
	return resp.(R)
}

// expectClosed checks that the server closed the connection without
// sending anything (more).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	corr, _, err := readFrame(c)
	if err == nil {
		t.Fatalf("got response %d, want the connection closed", corr)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
		t.Fatalf("want the connection closed, got %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// batch builds a v2 record batch holding values, with a correct CRC.
func batch(values ...string) []byte {
	var recs []byte
	for i, v := range values {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, -1)       // null key
		r = binary.AppendVarint(r, int64(len(v)))
		r = append(r, v...)
		r = binary.AppendVarint(r, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := make([]byte, batchHeaderBytes, batchHeaderBytes+len(recs))
	binary.BigEndian.PutUint32(b[batchLengthOffset:], uint32(batchHeaderBytes-batchLogOverhead+len(recs)))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff) // partition leader epoch
	b[batchMagicOffset] = 2
	binary.BigEndian.PutUint32(b[23:], uint32(len(values)-1)) // last offset delta
	binary.BigEndian.PutUint64(b[27:], 1700000000000)
	binary.BigEndian.PutUint64(b[35:], 1700000000000)
	binary.BigEndian.PutUint64(b[43:], 0xffffffffffffffff) // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)             // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)         // base sequence -1
	binary.BigEndian.PutUint32(b[batchCountOffset:], uint32(len(values)))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[batchCRCOffset:], crc32.Checksum(b[batchAttrsOffset:], castagnoli))
	return b
}

// produceReq builds a Produce request for partitions of topic, each with
// its records.
func produceReq(acks int16, topic string, records ...[]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for i, r := range records {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(i)
		rp.Records = r
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func metadataReq(topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	for _, n := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
