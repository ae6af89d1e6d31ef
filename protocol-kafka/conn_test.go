package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOversizedFrameRefused(t *testing.T) {
	h := newTestHost()
	const limit = 1 << 20
	s := startServer(t, h, func(c *Config) { c.MaxRequestBytes = limit })

	for _, size := range []uint32{limit + 1, 1<<31 - 1, 1 << 31 /* negative */, 3 /* below a header */} {
		c := dial(t, s)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		send(t, c, binary.BigEndian.AppendUint32(nil, size))
		expectClosed(t, c)
		runtime.ReadMemStats(&after)
		// Allocating the frame would take size bytes; the server
		// refuses it having read only the 4-byte size.
		if grew := after.TotalAlloc - before.TotalAlloc; size > limit && grew > limit {
			t.Errorf("size %d: %d bytes allocated while refusing the frame", size, grew)
		}
	}

	// A frame at the limit is read (and here rejected only as malformed).
	c := dial(t, s)
	req := frame(kmsg.NewPtrApiVersionsRequest(), 0, 1)
	big := make([]byte, limit+4)
	copy(big, req)
	binary.BigEndian.PutUint32(big, limit)
	send(t, c, big)
	resp := recv[*kmsg.ApiVersionsResponse](t, c, kmsg.NewPtrApiVersionsRequest(), 1)
	if resp.ErrorCode != 0 {
		t.Fatalf("error %d", resp.ErrorCode)
	}
}

func TestUnsupportedKeyOrVersionCloses(t *testing.T) {
	h := newTestHost()
	s := startServer(t, h, nil)
	for name, f := range map[string][]byte{
		"unknown key": func() []byte {
			b := frame(kmsg.NewPtrApiVersionsRequest(), 0, 2)
			binary.BigEndian.PutUint16(b[4:], 1000)
			return b
		}(),
		"unserved key": frame(kmsg.NewPtrLeaderAndISRRequest(), 0, 2),
		"metadata v13": frame(metadataReq("a"), 13, 2),
		"fetch v3":     frame(kmsg.NewPtrFetchRequest(), 3, 2),
		"negative key": func() []byte {
			b := frame(kmsg.NewPtrApiVersionsRequest(), 0, 2)
			binary.BigEndian.PutUint16(b[4:], 0xffff)
			return b
		}(),
		"truncated body": func() []byte {
			b := frame(metadataReq("abc"), 1, 2)
			b = b[:len(b)-2]
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		}(),
		"bad client id len": func() []byte {
			b := frame(kmsg.NewPtrApiVersionsRequest(), 0, 2)
			binary.BigEndian.PutUint16(b[12:], 0xfff0)
			return b
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, s)
			// The request before the bad one is still answered.
			av := kmsg.NewPtrApiVersionsRequest()
			send(t, c, frame(av, 3, 1), f)
			recv[*kmsg.ApiVersionsResponse](t, c, av, 1)
			expectClosed(t, c)
		})
	}
}

func TestApiVersions(t *testing.T) {
	h := newTestHost()
	s := startServer(t, h, nil)
	c := dial(t, s)

	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "wire-test", "1.0"
	send(t, c, frame(req, 4, 7))
	resp := recv[*kmsg.ApiVersionsResponse](t, c, req, 7)
	if resp.ErrorCode != 0 {
		t.Fatalf("error %d", resp.ErrorCode)
	}
	want := map[int16][2]int16{0: {0, 12}, 1: {4, 16}, 2: {1, 10}, 3: {0, 12}, 18: {0, 4}, 19: {0, 7}, 20: {0, 6}, 22: {0, 5}, 32: {0, 4}, 37: {0, 3}, 60: {0, 2}}
	if len(resp.ApiKeys) != len(want) {
		t.Errorf("%d keys advertised, want %d", len(resp.ApiKeys), len(want))
	}
	for _, k := range resp.ApiKeys {
		if w, ok := want[k.ApiKey]; !ok || w != [2]int16{k.MinVersion, k.MaxVersion} {
			t.Errorf("key %d: v%d-%d advertised, want %v", k.ApiKey, k.MinVersion, k.MaxVersion, w)
		}
	}

	// Bad client software name: INVALID_REQUEST.
	req.ClientSoftwareName = "-bad-"
	send(t, c, frame(req, 3, 8))
	if resp := recv[*kmsg.ApiVersionsResponse](t, c, req, 8); resp.ErrorCode != int16(protocol.ErrInvalidRequest) {
		t.Fatalf("bad software name: error %d", resp.ErrorCode)
	}
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	h := newTestHost()
	s := startServer(t, h, nil)
	c := dial(t, s)

	// A version from the future, with a body we cannot know: KIP-511
	// says answer with a v0 response carrying our range.
	b := frame(kmsg.NewPtrApiVersionsRequest(), 3, 9)
	binary.BigEndian.PutUint16(b[6:], 99)
	b = append(b, 0xde, 0xad) // unknown fields
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	send(t, c, b)
	v0 := kmsg.NewPtrApiVersionsRequest()
	resp := recv[*kmsg.ApiVersionsResponse](t, c, v0, 9)
	if resp.ErrorCode != int16(protocol.ErrUnsupportedVersion) {
		t.Fatalf("error %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	found := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == apiVersionsKey && k.MinVersion == 0 && k.MaxVersion == 4 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no ApiVersions range in %+v", resp.ApiKeys)
	}
	// The connection stays usable.
	send(t, c, frame(kmsg.NewPtrApiVersionsRequest(), 0, 10))
	recv[*kmsg.ApiVersionsResponse](t, c, kmsg.NewPtrApiVersionsRequest(), 10)
}

func TestPipelinedResponsesInOrder(t *testing.T) {
	h := newTestHost()
	release := make(chan struct{})
	metadataSeen := make(chan struct{}, 4)
	var produced []string
	h.onProduce = func(r protocol.ProduceRequest) {
		if r.Topic == "slow" {
			<-release
		}
		h.mu.Lock()
		produced = append(produced, r.Topic)
		h.mu.Unlock()
	}
	h.onMetadata = func([]string) { metadataSeen <- struct{}{} }
	h.mu.Lock()
	h.createLocked("slow", 1, nil)
	h.createLocked("fast", 1, nil)
	h.mu.Unlock()
	s := startServer(t, h, nil)
	c := dial(t, s)

	p1 := produceReq(1, "slow", batch("a"))
	av := kmsg.NewPtrApiVersionsRequest()
	md := metadataReq("fast")
	p2 := produceReq(1, "fast", batch("b"))
	send(t, c, frame(p1, 9, 1), frame(av, 3, 2), frame(md, 12, 3), frame(p2, 9, 4))

	// Metadata is handled while the first produce is still in the Host:
	// requests run concurrently...
	<-metadataSeen
	close(release)

	// ...but are answered in request order, and the second produce
	// reached the Host after the first.
	if r := recv[*kmsg.ProduceResponse](t, c, p1, 1); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce 1: %+v", r.Topics[0].Partitions[0])
	}
	recv[*kmsg.ApiVersionsResponse](t, c, av, 2)
	if r := recv[*kmsg.MetadataResponse](t, c, md, 3); len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata %+v", r.Topics)
	}
	recv[*kmsg.ProduceResponse](t, c, p2, 4)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(produced) != 2 || produced[0] != "slow" || produced[1] != "fast" {
		t.Fatalf("host saw produces in order %v", produced)
	}
}

func TestAcksZero(t *testing.T) {
	h := newTestHost()
	h.mu.Lock()
	h.createLocked("t", 1, nil)
	h.mu.Unlock()
	s := startServer(t, h, nil)
	c := dial(t, s)

	p := produceReq(0, "t", batch("x", "y"))
	av := kmsg.NewPtrApiVersionsRequest()
	send(t, c, frame(p, 9, 1), frame(av, 3, 2))
	// No response to the produce: the first frame answers corr 2.
	recv[*kmsg.ApiVersionsResponse](t, c, av, 2)
	if n := h.produceCalls(); n != 1 {
		t.Fatalf("host saw %d produces", n)
	}

	// A failed acks=0 produce closes the connection (Kafka's way to
	// tell the client).
	send(t, c, frame(produceReq(0, "missing", batch("x")), 9, 3))
	expectClosed(t, c)
}

func TestProduceValidation(t *testing.T) {
	good := batch("v")
	badCRC := batch("v")
	badCRC[len(badCRC)-1] ^= 0xff
	magic1 := batch("v")
	magic1[batchMagicOffset] = 1
	magic3 := batch("v")
	magic3[batchMagicOffset] = 3
	noRecords := batch("v")
	binary.BigEndian.PutUint32(noRecords[batchCountOffset:], 0)
	binary.BigEndian.PutUint32(noRecords[batchCRCOffset:], crc32c(noRecords[batchAttrsOffset:]))
	longLength := batch("v")
	binary.BigEndian.PutUint32(longLength[batchLengthOffset:], uint32(len(longLength)))
	trailing := append(batch("v"), 1, 2, 3)

	for _, tc := range []struct {
		name  string
		acks  int16
		topic string
		recs  [][]byte
		want  []protocol.ErrorCode
	}{
		{"bad crc", 1, "t", [][]byte{badCRC}, []protocol.ErrorCode{protocol.ErrCorruptMessage}},
		{"acks 2", 2, "t", [][]byte{good, good}, []protocol.ErrorCode{protocol.ErrInvalidRequiredAcks, protocol.ErrInvalidRequiredAcks}},
		{"acks -2", -2, "t", [][]byte{good}, []protocol.ErrorCode{protocol.ErrInvalidRequiredAcks}},
		{"invalid topic", -1, "bad/topic", [][]byte{good}, []protocol.ErrorCode{protocol.ErrInvalidTopicException}},
		{"topic ..", -1, "..", [][]byte{good}, []protocol.ErrorCode{protocol.ErrInvalidTopicException}},
		{"magic 1", 1, "t", [][]byte{magic1}, []protocol.ErrorCode{protocol.ErrUnsupportedForMessageFormat}},
		{"magic 3", 1, "t", [][]byte{magic3}, []protocol.ErrorCode{protocol.ErrCorruptMessage}},
		{"no records", 1, "t", [][]byte{noRecords}, []protocol.ErrorCode{protocol.ErrCorruptMessage}},
		{"length past end", 1, "t", [][]byte{longLength}, []protocol.ErrorCode{protocol.ErrCorruptMessage}},
		{"trailing bytes", 1, "t", [][]byte{trailing}, []protocol.ErrorCode{protocol.ErrCorruptMessage}},
		{"empty", 1, "t", [][]byte{{}}, []protocol.ErrorCode{protocol.ErrCorruptMessage}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost()
			h.mu.Lock()
			h.createLocked("t", 2, nil)
			h.mu.Unlock()
			s := startServer(t, h, nil)
			c := dial(t, s)
			for _, v := range []int16{3, 9, 12} {
				p := produceReq(tc.acks, tc.topic, tc.recs...)
				send(t, c, frame(p, v, int32(v)))
				resp := recv[*kmsg.ProduceResponse](t, c, p, int32(v))
				for i, sp := range resp.Topics[0].Partitions {
					if sp.ErrorCode != int16(tc.want[i]) || sp.BaseOffset != -1 {
						t.Errorf("v%d partition %d: error %d offset %d, want error %d", v, i, sp.ErrorCode, sp.BaseOffset, tc.want[i])
					}
					if v >= 8 && sp.ErrorMessage == nil {
						t.Errorf("v%d partition %d: no error message", v, i)
					}
				}
			}
			if n := h.produceCalls(); n != 0 {
				t.Fatalf("%d produces reached the host", n)
			}
		})
	}

	// A good partition next to a bad one is written.
	h := newTestHost()
	h.mu.Lock()
	h.createLocked("t", 2, nil)
	h.mu.Unlock()
	s := startServer(t, h, nil)
	c := dial(t, s)
	p := produceReq(-1, "t", good, badCRC)
	send(t, c, frame(p, 0, 1)) // v0 too: advertised, takes v2 batches
	resp := recv[*kmsg.ProduceResponse](t, c, p, 1)
	if ps := resp.Topics[0].Partitions; ps[0].ErrorCode != 0 || ps[0].BaseOffset != 0 || ps[1].ErrorCode != int16(protocol.ErrCorruptMessage) {
		t.Fatalf("partitions %+v", ps)
	}
	if n := h.produceCalls(); n != 1 {
		t.Fatalf("%d produces reached the host", n)
	}
}

func crc32c(b []byte) uint32 {
	return crc32Checksum(b)
}

func TestMetadataVersions(t *testing.T) {
	h := newTestHost()
	h.mu.Lock()
	id := h.createLocked("t", 2, nil).id
	h.mu.Unlock()
	s := startServer(t, h, nil)
	c := dial(t, s)

	for v := int16(0); v <= 12; v++ {
		req := metadataReq("t", "bad name", fmt.Sprintf("unknown-v%d", v))
		send(t, c, frame(req, v, int32(v)))
		resp := recv[*kmsg.MetadataResponse](t, c, req, int32(v))
		if len(resp.Brokers) != 1 || len(resp.Topics) != 3 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if tp := resp.Topics[0]; tp.ErrorCode != 0 || len(tp.Partitions) != 2 || (v >= 10 && tp.TopicID != id) {
			t.Errorf("v%d topic t: %+v", v, tp)
		}
		if resp.Topics[1].ErrorCode != int16(protocol.ErrInvalidTopicException) {
			t.Errorf("v%d illegal name: error %d", v, resp.Topics[1].ErrorCode)
		}
		// v0-3 always auto-create; v4+ asked not to.
		if want := v >= 4; (resp.Topics[2].ErrorCode == int16(protocol.ErrUnknownTopicOrPartition)) != want {
			t.Errorf("v%d unknown topic: error %d", v, resp.Topics[2].ErrorCode)
		}
		if v >= 2 && (resp.ClusterID == nil || *resp.ClusterID != "test-cluster") {
			t.Errorf("v%d cluster id %v", v, resp.ClusterID)
		}
	}

	// By topic id (v12), and all topics.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = id
	unknown := kmsg.NewMetadataRequestTopic()
	unknown.TopicID = [16]byte{1}
	req.Topics = append(req.Topics, rt, unknown)
	send(t, c, frame(req, 12, 100))
	resp := recv[*kmsg.MetadataResponse](t, c, req, 100)
	if tp := resp.Topics[0]; tp.Topic == nil || *tp.Topic != "t" || tp.ErrorCode != 0 {
		t.Fatalf("by id: %+v", tp)
	}
	if tp := resp.Topics[1]; tp.ErrorCode != int16(protocol.ErrUnknownTopicID) {
		t.Fatalf("unknown id: %+v", tp)
	}
	all := kmsg.NewPtrMetadataRequest()
	send(t, c, frame(all, 12, 101))
	if resp := recv[*kmsg.MetadataResponse](t, c, all, 101); len(resp.Topics) != 5 { // t, and those auto-created by v0-3
		t.Fatalf("all topics: %d", len(resp.Topics))
	}
}

func TestFetchByTopicIDAndSessions(t *testing.T) {
	h := newTestHost()
	h.mu.Lock()
	id := h.createLocked("t", 1, nil).id
	h.mu.Unlock()
	s := startServer(t, h, nil)
	c := dial(t, s)

	p := produceReq(1, "t", batch("a", "b"))
	send(t, c, frame(p, 9, 1))
	recv[*kmsg.ProduceResponse](t, c, p, 1)

	fetch := func(v int16, corr int32, topicID [16]byte, epoch int32) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes, req.MinBytes, req.SessionEpoch = 1<<20, 1, epoch
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "t", topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		send(t, c, frame(req, v, corr))
		return recv[*kmsg.FetchResponse](t, c, req, corr)
	}
	for v := int16(4); v <= 16; v++ {
		resp := fetch(v, int32(v), id, 0)
		sp := resp.Topics[0].Partitions[0]
		if resp.SessionID != 0 || sp.ErrorCode != 0 || sp.HighWatermark != 2 || len(sp.RecordBatches) == 0 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if v >= 13 && resp.Topics[0].TopicID != id {
			t.Fatalf("v%d: topic id not echoed", v)
		}
	}
	if sp := fetch(13, 50, [16]byte{9}, 0).Topics[0].Partitions[0]; sp.ErrorCode != int16(protocol.ErrUnknownTopicID) {
		t.Fatalf("unknown topic id: %+v", sp)
	}
	if resp := fetch(12, 51, id, 5); resp.ErrorCode != errFetchSessionIDNotFound {
		t.Fatalf("incremental fetch: error %d", resp.ErrorCode)
	}
}

func TestMaxConnections(t *testing.T) {
	h := newTestHost()
	s := startServer(t, h, func(c *Config) { c.MaxConnections = 1 })
	c1 := dial(t, s)
	send(t, c1, frame(kmsg.NewPtrApiVersionsRequest(), 0, 1))
	recv[*kmsg.ApiVersionsResponse](t, c1, kmsg.NewPtrApiVersionsRequest(), 1)
	c2 := dial(t, s)
	expectClosed(t, c2)
}

func TestShutdownCancelsLongPoll(t *testing.T) {
	h := newTestHost()
	h.mu.Lock()
	h.createLocked("t", 1, nil)
	h.mu.Unlock()
	s := startServer(t, h, nil)
	c := dial(t, s)
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 1<<30, 1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	send(t, c, frame(req, 12, 1))
	// Wait until the server has the connection, then shut down: the
	// Host's long poll sees the canceled context.
	send(t, c, frame(kmsg.NewPtrApiVersionsRequest(), 0, 2))
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
}
