package wal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
)

// fuzzSegSize is the segment size of the stores the fuzz targets build.
const fuzzSegSize = 4 << 10

// seedSegments returns the segment files of a small store that went
// through appends, overwrites, truncations, a reset, a drop and rotations.
func seedSegments(tb testing.TB) ([][]byte, []uint64) {
	tb.Helper()
	dir := tb.TempDir()
	cfg := testConfig(fuzzSegSize)
	s, err := Open(context.Background(), dir, cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	w := func(ws ...storage.GroupWrite) {
		if err := s.Write(ctx, ws, true); err != nil {
			tb.Fatal(err)
		}
	}
	w(storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(1, 1, "a"), ent(2, 1, "bb")}, State: []byte("s1")},
		storage.GroupWrite{Group: 2, Reset: &storage.Position{Index: 9, Term: 2}, Entries: []storage.Entry{ent(10, 2, "c")}})
	w(storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(2, 2, "B"), ent(3, 2, "C")}, TruncBefore: 2})
	for i := uint64(11); i < 40; i++ {
		w(storage.GroupWrite{Group: 2, Entries: []storage.Entry{ent(i, 2, string(bytes.Repeat([]byte{byte(i)}, 200)))}, TruncBefore: i - 2})
	}
	w(storage.GroupWrite{Group: 3, Entries: []storage.Entry{ent(1, 1, "dropped")}, State: []byte("s3")})
	if err := s.Drop(ctx, 3); err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	var seqs []uint64
	files, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		seq, _ := parseName(filepath.Base(p), segSuffix)
		if len(dataRecordOffsets(b, seq)) == 0 {
			continue // the spare prepared for the next rotation
		}
		out = append(out, b)
		seqs = append(seqs, seq)
	}
	return out, seqs
}

// FuzzDecodeRecord feeds arbitrary bytes to the record decoders: they
// must fail cleanly, never panic.
func FuzzDecodeRecord(f *testing.F) {
	meta, spl := appendGW(nil, &storage.GroupWrite{Group: 3, Reset: &storage.Position{Index: 4, Term: 1},
		Entries: []storage.Entry{ent(5, 1, "hello"), ent(6, 2, "")}, State: []byte("st"), TruncBefore: 5}, nil)
	rec := flatten(meta, spl)
	f.Add(append([]byte{1}, rec...))
	f.Add(appendCheckpoint(nil, []groupMeta{{group: 1, first: 3, last: 9, prevTerm: 2, state: []byte("x")}, {group: 2, first: 1}}))
	f.Add(buildRecord(recBatch, append([]byte{1}, rec...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if gws, err := decodeBatch(b); err == nil {
			for _, w := range gws {
				for _, e := range w.entries {
					_ = b[e.off : e.off+e.n]
				}
			}
		}
		_, _ = decodeCheckpoint(b)
		_, _ = decodeUvarintBody(b)
		_ = bodyValid(recBatch, b, 0)
		if len(b) >= headerSize {
			if h, ok := validAt(b, 0); ok && h.typ == recBatch {
				_, _ = decodeBatch(b[headerSize : headerSize+int(h.bodyLen)])
			}
		}
	})
}

// FuzzRecover opens a directory holding up to two segment files of fuzzed
// bytes. Open must return a store or a clean error, never panic; a store
// it returns must answer every read and take a write.
func FuzzRecover(f *testing.F) {
	f.Add(uint16(1), []byte{}, []byte{})
	f.Add(uint16(1), make([]byte, fuzzSegSize), []byte{})
	f.Fuzz(func(t *testing.T, base uint16, seg1, seg2 []byte) {
		if len(seg1) > 2*fuzzSegSize || len(seg2) > 2*fuzzSegSize {
			return
		}
		dir := t.TempDir()
		for i, b := range [][]byte{seg1, seg2} {
			if len(b) == 0 {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, segName(uint64(base)+1+uint64(i))), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Open(context.Background(), dir, testConfig(fuzzSegSize), nil)
		if err != nil {
			if storage.CodeOf(err) == storage.CodeInternal {
				t.Fatalf("Open: an error without a code: %v", err)
			}
			return
		}
		defer s.Close()
		ids, err := s.Groups(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			l, err := s.Log(id)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := l.FirstIndex()
			last, _ := l.LastIndex()
			if _, err := l.Term(first - 1); err != nil {
				t.Fatalf("group %d: Term(%d): %v", id, first-1, err)
			}
			if last >= first {
				if _, err := l.Entries(first, min(last+1, first+100), 0); err != nil && storage.CodeOf(err) != storage.CodeCorrupt {
					t.Fatalf("group %d: Entries: %v", id, err)
				}
			}
			_, _ = l.State()
		}
		if err := s.Write(context.Background(), []storage.GroupWrite{{Group: 1 << 50, Entries: []storage.Entry{ent(1, 1, "x")}}}, true); err != nil {
			t.Fatalf("Write after recovery: %v", err)
		}
	})
}

// TestWriteFuzzCorpus regenerates the committed seed corpus of FuzzRecover
// from a real store when WAL_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("WAL_WRITE_CORPUS") != "1" {
		t.Skip("set WAL_WRITE_CORPUS=1 to regenerate testdata/fuzz/FuzzRecover")
	}
	segs, seqs := seedSegments(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzRecover")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := len(segs)
	base := seqs[n-2] - 1
	if seqs[n-1] != seqs[n-2]+1 {
		t.Fatalf("segments %d and %d are not consecutive", seqs[n-2], seqs[n-1])
	}
	write := func(name string, base uint64, a, b []byte) {
		var buf bytes.Buffer
		buf.WriteString("go test fuzz v1\n")
		buf.WriteString("uint16(" + strconv.FormatUint(base, 10) + ")\n")
		buf.WriteString("[]byte(" + quote(a) + ")\n")
		buf.WriteString("[]byte(" + quote(b) + ")\n")
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(segs) < 2 {
		t.Fatalf("%d segments; want 2 or more", len(segs))
	}
	write("store-last-two", base, segs[n-2], segs[n-1])
	write("store-last", base+1, segs[n-1], nil)
	torn := append([]byte(nil), segs[n-1]...)
	torn[len(torn)/3] ^= 0xff
	write("store-torn", base, segs[n-2], torn)
	if offs := dataRecordOffsets(segs[n-1], seqs[n-1]); len(offs) > 1 {
		write("store-cut-unaligned", base+1, segs[n-1][:offs[1]-3], nil)
	}
	mid := append([]byte(nil), segs[n-2]...)
	mid[headerSize+3] ^= 0x01
	write("store-mid-corrupt", base, mid, segs[n-1])

	dir = filepath.Join("testdata", "fuzz", "FuzzDecodeRecord")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	last := segs[n-1]
	for i, off := range dataRecordOffsets(last, seqs[n-1]) {
		h, _ := parseHeader(last[off:])
		body := last[off+headerSize : off+headerSize+int64(h.bodyLen)]
		name := filepath.Join(dir, "record-"+strconv.Itoa(i))
		if err := os.WriteFile(name, []byte("go test fuzz v1\n[]byte("+quote(body)+")\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if i >= 5 {
			break
		}
	}
}

func quote(b []byte) string { return strconv.Quote(string(b)) }
