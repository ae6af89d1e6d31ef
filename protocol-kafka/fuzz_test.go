package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memConn is a net.Conn whose reads come from a fixed input (then EOF) and
// whose writes are collected.
type memConn struct {
	in     *bytes.Reader
	mu     sync.Mutex
	out    bytes.Buffer
	closed atomic.Bool
}

func (c *memConn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.in.Read(b)
}

func (c *memConn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(b)
}

func (c *memConn) Close() error                     { c.closed.Store(true); return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9092} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// errorLog counts records at Error level: the server logs a recovered
// panic there, which the fuzz target treats as a failure.
type errorLog struct{ n *atomic.Int64 }

func (h errorLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h errorLog) Handle(_ context.Context, r slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h errorLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h errorLog) WithGroup(string) slog.Handler      { return h }

// seedFrames are real encoded requests of several keys and versions, and
// some broken ones.
func seedFrames() [][]byte {
	p := produceReq(1, "t", batch("a", "b"))
	bad := batch("x")
	bad[len(bad)-1] ^= 1
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxBytes, fetch.MinBytes = 1<<20, 1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "new", 2, 1
	ct.Topics = append(ct.Topics, ctt)
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"new"}
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dcr := kmsg.NewDescribeConfigsRequestResource()
	dcr.ResourceType, dcr.ResourceName = 2, "t"
	dc.Resources = append(dc.Resources, dcr)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "t", 3
	cp.Topics = append(cp.Topics, cpt)
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	avFuture := frame(kmsg.NewPtrApiVersionsRequest(), 3, 99)
	binary.BigEndian.PutUint16(avFuture[6:], 77)

	return [][]byte{
		frame(av, 0, 1),
		frame(av, 3, 2),
		avFuture,
		frame(metadataReq("t", "u"), 1, 3),
		frame(metadataReq("t"), 12, 4),
		frame(kmsg.NewPtrMetadataRequest(), 9, 5),
		frame(p, 3, 6),
		frame(p, 9, 7),
		frame(produceReq(0, "t", batch("z")), 12, 8),
		frame(produceReq(2, "t", bad), 9, 9),
		frame(produceReq(1, "bad/name", bad), 7, 10),
		frame(fetch, 4, 11),
		frame(fetch, 12, 12),
		frame(fetch, 16, 13),
		frame(lo, 1, 14),
		frame(lo, 10, 15),
		frame(ct, 0, 16),
		frame(ct, 7, 17),
		frame(dt, 0, 18),
		frame(dt, 5, 19),
		frame(dc, 4, 20),
		frame(cp, 3, 21),
		frame(kmsg.NewPtrInitProducerIDRequest(), 4, 22),
		frame(kmsg.NewPtrDescribeClusterRequest(), 1, 23),
		frame(kmsg.NewPtrLeaderAndISRRequest(), 0, 24),     // unserved key
		binary.BigEndian.AppendUint32(nil, 1<<31-1),        // oversized
		{0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 25, 0xff, 0xff}, // truncated metadata
	}
}

// fuzzSeeds are the seed frames alone and pipelined.
func fuzzSeeds() [][]byte {
	seeds := seedFrames()
	return append(seeds, bytes.Join(seeds[:6], nil), bytes.Join(seeds[6:14], nil), bytes.Join(seeds[14:24], nil))
}

// FuzzConn feeds arbitrary bytes to a connection of a server over a stub
// Host. The server must never panic (nor log a recovered one), and what it
// writes must be whole response frames, in the order of the requests.
func FuzzConn(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		h := newTestHost()
		h.noWait = true
		h.mu.Lock()
		h.createLocked("t", 2, nil)
		h.mu.Unlock()
		var errs atomic.Int64
		cfg := DefaultConfig()
		cfg.MaxRequestBytes = 1 << 20
		s, err := newServer(component.Settings{Logger: slog.New(errorLog{&errs})}, cfg, h)
		if err != nil {
			t.Fatal(err)
		}
		mc := &memConn{in: bytes.NewReader(in)}
		s.serveConn(mc)
		s.wg.Wait() // the connection ends at the input's end
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := errs.Load(); n > 0 {
			t.Fatalf("%d errors logged (a recovered panic?)", n)
		}

		// Every frame written is whole and answers a request read, in
		// order.
		out := mc.out.Bytes()
		var corrs []int32
		for r := in; len(r) >= 12; {
			n := int(binary.BigEndian.Uint32(r))
			if n < minRequestBytes || n > len(r)-4 {
				break
			}
			corrs = append(corrs, int32(binary.BigEndian.Uint32(r[8:])))
			r = r[4+n:]
		}
		for i := 0; len(out) > 0; i++ {
			if len(out) < 8 {
				t.Fatalf("partial frame %x", out)
			}
			n := int(binary.BigEndian.Uint32(out))
			if n < 4 || n > len(out)-4 {
				t.Fatalf("bad frame size %d of %d", n, len(out)-4)
			}
			corr := int32(binary.BigEndian.Uint32(out[4:]))
			for len(corrs) > 0 && corrs[0] != corr { // acks=0 produces send nothing
				corrs = corrs[1:]
			}
			if len(corrs) == 0 {
				t.Fatalf("response %d answers no request, or is out of order", corr)
			}
			corrs = corrs[1:]
			out = out[4+n:]
		}
	})
}

// TestWriteFuzzCorpus writes the seed frames to testdata/fuzz/FuzzConn when
// CHRONIK_WRITE_FUZZ_CORPUS is set (run it after changing seedFrames).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("CHRONIK_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set CHRONIK_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz/FuzzConn")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzConn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
