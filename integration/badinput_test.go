package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/component"
)

// TestBadInput sends what a broker must refuse to a real broker and checks
// the Kafka error and that nothing already written changed.
func TestBadInput(t *testing.T) { forEachBackend(t, testBadInput) }

func testBadInput(t *testing.T, consensus component.Type) {
	c := StartCluster(t, Options{Brokers: 1, Consensus: consensus})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// kadm serves metadata from the client's cache; keep it fresh so the
	// final ListOffsets does not see the leaderless answer from creation.
	cl := newClient(t, c, kgo.MetadataMinAge(20*time.Millisecond))
	adm := kadm.NewClient(cl)
	const topic = "guarded"
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("2048")}, topic); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		leaderOf(t, c, topic, p) // the final ListOffsets needs both partitions led
	}
	prod := newClient(t, c, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordRetries(2), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	t.Run("MessageTooLarge", func(t *testing.T) {
		err := prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: make([]byte, 4096)}).FirstErr()
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("4 KiB record into max.message.bytes=2048: %v, want MESSAGE_TOO_LARGE", err)
		}
	})
	t.Run("UnknownPartition", func(t *testing.T) {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = 7
		rp.Records = validBatch(t)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("partition 7 of 2: code %d, want UNKNOWN_TOPIC_OR_PARTITION", code)
		}
	})
	t.Run("InvalidTopicName", func(t *testing.T) {
		for _, name := range []string{"bad name", "..", strings.Repeat("x", 250), "a/b"} {
			resp, err := adm.CreateTopic(ctx, 1, 1, nil, name)
			if !errors.Is(err, kerr.InvalidTopicException) && !errors.Is(resp.Err, kerr.InvalidTopicException) {
				t.Errorf("create %q: %v / %v, want INVALID_TOPIC_EXCEPTION", name, err, resp.Err)
			}
		}
	})
	t.Run("BadCRC", func(t *testing.T) {
		b := validBatch(t)
		b[len(b)-1] ^= 0xff
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = b
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.CorruptMessage.Code {
			t.Fatalf("flipped byte: code %d, want CORRUPT_MESSAGE", code)
		}
	})
	t.Run("InvalidAcks", func(t *testing.T) {
		// kgo rewrites a request's acks to its own setting, so this one goes
		// over a raw connection.
		req := kmsg.NewPtrProduceRequest()
		req.Version = 7
		req.Acks, req.TimeoutMillis = 2, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = validBatch(t)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := kmsg.NewPtrProduceResponse()
		rawRoundTrip(t, c.Addrs()[0], req, resp)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRequiredAcks.Code {
			t.Fatalf("acks=2: code %d, want INVALID_REQUIRED_ACKS", code)
		}
	})
	// Nothing above touched what was written.
	ends := endOffsets(t, adm, topic) // retries LEADER_NOT_AVAILABLE, as clients do
	if e, _ := ends.Lookup(topic, 0); e.Offset != 1 {
		t.Fatalf("partition 0 end offset %d after the refused requests, want 1", e.Offset)
	}
	if e, _ := ends.Lookup(topic, 1); e.Offset != 0 {
		t.Fatalf("partition 1 end offset %d, want 0", e.Offset)
	}
}

// validBatch encodes a one-record, uncompressed, non-idempotent v2 batch.
func validBatch(t testing.TB) []byte {
	t.Helper()
	var rec []byte
	rec = append(rec, 0)               // attributes
	rec = binary.AppendVarint(rec, 0)  // timestamp delta
	rec = binary.AppendVarint(rec, 0)  // offset delta
	rec = binary.AppendVarint(rec, -1) // null key
	rec = binary.AppendVarint(rec, 1)  // value length
	rec = append(rec, 'v')             // value
	rec = binary.AppendVarint(rec, 0)  // no headers
	recs := binary.AppendVarint(nil, int64(len(rec)))
	recs = append(recs, rec...)
	now := time.Now().UnixMilli()
	b := make([]byte, 61, 61+len(recs))
	binary.BigEndian.PutUint32(b[8:], uint32(61-12+len(recs))) // length
	b[16] = 2                                                  // magic
	binary.BigEndian.PutUint64(b[27:], uint64(now))            // base timestamp
	binary.BigEndian.PutUint64(b[35:], uint64(now))            // max timestamp
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))             // producer id -1
	binary.BigEndian.PutUint16(b[51:], ^uint16(0))             // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], ^uint32(0))             // base sequence -1
	binary.BigEndian.PutUint32(b[57:], 1)                      // records
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[17:], crc32c(b[21:]))
	return b
}

// rawRoundTrip sends one non-flexible request on a new connection and
// decodes its response.
func rawRoundTrip(t testing.TB, addr string, req kmsg.Request, resp kmsg.Response) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4, 64)
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.GetVersion()))
	buf = binary.BigEndian.AppendUint32(buf, 42)
	buf = binary.BigEndian.AppendUint16(buf, 4)
	buf = append(buf, "test"...)
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := conn.Write(buf); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
}
