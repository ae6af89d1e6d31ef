package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chronik-go/chronik/core/storage"
)

// Store is a storage.Store in a directory of segment files. It is safe for
// concurrent use. See the package doc for the format and the guarantees.
type Store struct {
	cfg   Config
	dir   string
	log   *slog.Logger
	fsync func(*os.File) error // fdatasync; tests inject failures
	lock  *os.File             // flock'd: one store per directory

	// segMu is held for reading while segment files are read outside mu,
	// and for writing while reclaimed segments are closed. Lock order:
	// segMu, then syncMu, then mu.
	segMu sync.RWMutex

	// syncMu is held by the syncer during a round (so that CrashCopy sees
	// no fsync half done).
	syncMu   sync.Mutex
	syncReq  chan struct{}
	syncStop chan struct{}
	syncWG   sync.WaitGroup
	round    *round        // under mu: the next round
	synced   atomic.Uint64 // lsn durable on disk
	syncs    atomic.Uint64
	markMu   sync.Mutex // sync marks (Config.SyncMarks); taken last

	mu     sync.RWMutex
	groups map[storage.GroupID]*group
	segs   []*segment // retained, by ascending seq; the last is active
	off    int64      // write offset in the active segment
	closed bool
	failed atomic.Pointer[error]

	inflight sync.WaitGroup // Writes waiting for their sync
	recovery Recovery
	ckptErr  error // during recovery: the last checkpoint found entries missing

	// dirMu is held while files are created, renamed or removed (after
	// syncMu and mu, when those are held).
	dirMu    sync.Mutex
	recMu    sync.Mutex
	recycled []uint64 // recycle files, by seq

	preReq chan uint64     // the next segment to prepare
	next   chan prepResult // the prepared segment
	kick   chan struct{}   // wakes the reclaimer
	done   chan struct{}
	bg     sync.WaitGroup
}

type prepResult struct {
	seg *segment
	err error
}

var (
	_ storage.Store = (*Store)(nil)
	_ storage.Stats = (*Store)(nil)
)

// lsn orders positions in the log: segment sequence, then offset.
func lsn(seq uint64, off int64) uint64 { return seq<<32 | uint64(off) }

func (s *Store) active() *segment { return s.segs[len(s.segs)-1] }

// sealSize is the space reserved at the end of every segment for its seal.
const (
	sealBodyMax = 10
	sealSize    = headerSize + sealBodyMax + recordAlign - sealBodyMax%recordAlign
)

// errState returns the error every call gets on a closed or failed store.
// The caller holds mu.
func (s *Store) errState(what string) error {
	if p := s.failed.Load(); p != nil {
		return storage.Errorf(storage.CodeFailed, "wal: %s: store failed: %w", what, *p)
	}
	if s.closed {
		return storage.Errorf(storage.CodeClosed, "wal: %s: store closed", what)
	}
	return nil
}

// fail closes the store for good after an I/O error whose outcome on disk
// is unknown (a failed fsync or write): it is never retried.
func (s *Store) fail(err error) error {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("wal: store failed; every later call fails", "dir", s.dir, "err", err)
	}
	return storage.Errorf(storage.CodeFailed, "wal: store failed: %w", *s.failed.Load())
}

// record is one encoded batch record in a write buffer: its header and
// metadata are buf[start:metaEnd], the entry data comes from splices.
type record struct {
	start, metaEnd int
	spl            []splice
	bodyLen        int
	gws            int // GroupWrites of the batch up to and including this record
}

func (r *record) size() int64 { return recordSize(r.bodyLen) }

// encodeBatch encodes ws as batch records of at most maxBody bytes each,
// splitting between GroupWrites. offs receives, for each entry of ws in
// order, the offset of its data from the start of its record, and its CRC.
func (s *Store) encodeBatch(buf []byte, ws []storage.GroupWrite, offs []dataPos) ([]byte, []record, []dataPos, error) {
	maxBody := int(s.cfg.maxBody())
	var recs []record
	var spl []splice
	for i := 0; i < len(ws); {
		start := len(buf)
		buf = append(buf, make([]byte, headerSize)...)
		buf = append(buf, 0, 0, 0, 0, 0) // count, patched below (uvarint, 5 bytes max)
		n, dataLen, first := 0, 0, len(spl)
		for i < len(ws) {
			w := &ws[i]
			if gwSize(w) > maxBody {
				return buf, nil, nil, storage.Errorf(storage.CodeTooLarge, "wal: group %d: write of %d bytes exceeds the record limit %d (segment_size)", w.Group, gwSize(w), maxBody)
			}
			if n > 0 && len(buf)-start-headerSize+dataLen+gwSize(w) > maxBody {
				break
			}
			k := len(spl)
			buf, spl = appendGW(buf, w, spl)
			for _, x := range spl[k:] {
				offs = append(offs, dataPos{off: x.at - start + dataLen, crc: binary.LittleEndian.Uint32(buf[x.at-4-uvarintLen(uint64(len(x.data))):])})
				dataLen += len(x.data)
			}
			n++
			i++
		}
		// Patch the count as a fixed 5-byte uvarint.
		c := buf[start+headerSize:]
		v := uint32(n)
		for k := range 4 {
			c[k] = byte(v) | 0x80
			v >>= 7
		}
		c[4] = byte(v)
		meta := buf[start+headerSize:]
		bodyLen := len(meta) + dataLen
		putHeader(buf[start:], header{bodyLen: uint32(bodyLen), bodyCRC: crc(meta), typ: recBatch})
		recs = append(recs, record{start: start, metaEnd: len(buf), spl: spl[first:len(spl):len(spl)], bodyLen: bodyLen, gws: i})
	}
	return buf, recs, offs, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// dataPos is where an entry's data is in its record, and its CRC.
type dataPos struct {
	off int
	crc uint32
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// Write applies ws; see storage.Store. Entries are encoded and checksummed
// before the write lock is taken; under it the batch is checked against the
// index, written to the active segment (one pwrite per record) and indexed.
// With sync (and fsync: always) it then waits for a sync that covers it:
// the first waiter syncs for everyone written so far (group commit).
func (s *Store) Write(ctx context.Context, ws []storage.GroupWrite, sync bool) error {
	if err := ctx.Err(); err != nil {
		return storage.Errorf(storage.CodeInternal, "wal: write: %w", err)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf, recs, offs, err := s.encodeBatch((*bp)[:0], ws, nil)
	*bp = buf[:0]
	if err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.errState("write"); err != nil {
		s.mu.Unlock()
		return err
	}
	if err := s.check(ws); err != nil {
		s.mu.Unlock()
		return err
	}
	end, kick, err := s.writeBatch(buf, recs, ws, offs)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var r *round
	if sync && s.cfg.Fsync == FsyncAlways && s.synced.Load() < end {
		r = s.join()
		s.inflight.Add(1)
	}
	s.mu.Unlock()
	if kick {
		s.kickReclaim()
	}
	if r == nil {
		return nil
	}
	defer s.inflight.Done()
	return s.await(r)
}

// check validates ws against the index (storage.CheckWrites). The caller
// holds mu.
func (s *Store) check(ws []storage.GroupWrite) error {
	return storage.CheckWrites(ws, func(id storage.GroupID) (uint64, uint64) {
		if g := s.groups[id]; g != nil {
			return g.first, g.last()
		}
		return 1, 0
	})
}

// writeBatch writes the records of buf and indexes ws. The caller holds mu.
// It returns the lsn past the last record and whether the reclaimer should
// look for segments to free.
func (s *Store) writeBatch(buf []byte, recs []record, ws []storage.GroupWrite, offs []dataPos) (uint64, bool, error) {
	kick := false
	gw, ent := 0, 0
	for _, r := range recs {
		rotated, err := s.writeSpliced(buf, &r)
		if err != nil {
			return 0, false, err
		}
		kick = kick || rotated
		seg, base := s.active(), s.off-r.size()
		for ; gw < r.gws; gw++ {
			w := &ws[gw]
			if w.Reset == nil && len(w.Entries) == 0 && w.State == nil && w.TruncBefore == 0 {
				continue
			}
			o := op{reset: w.Reset, truncBefore: w.TruncBefore}
			if len(w.Entries) > 0 {
				o.first = w.Entries[0].Index
				o.locs = make([]loc, len(w.Entries))
				for k := range w.Entries {
					e := &w.Entries[k]
					o.locs[k] = loc{seg: seg, off: uint32(base + int64(offs[ent].off)), n: uint32(len(e.Data)),
						crc: offs[ent].crc, kind: e.Kind, term: e.Term}
					ent++
				}
			}
			if w.State != nil {
				o.state = bytes.Clone(w.State)
				if o.state == nil {
					o.state = []byte{}
				}
			}
			g := s.groups[w.Group]
			if g == nil {
				g = newGroup()
				s.groups[w.Group] = g
			}
			// Dropping entries from the oldest segment may free it.
			if (w.Reset != nil || w.TruncBefore > g.first) && len(g.ents) > 0 && g.ents[0].seg == s.segs[0] {
				kick = true
			}
			g.apply(&o, false)
		}
	}
	return lsn(s.active().seq, s.off), kick && len(s.segs) > 1, nil
}

// writeRecord writes one record (header not yet finished) at the write
// offset. The caller holds mu.
func (s *Store) writeRecord(rec []byte) (rotated bool, err error) {
	return s.writeParts(rec[:headerSize], [][]byte{rec[headerSize:]}, int64(len(rec)))
}

// writeSpliced writes batch record r of buf. The caller holds mu.
func (s *Store) writeSpliced(buf []byte, r *record) (rotated bool, err error) {
	parts := make([][]byte, 0, 2*len(r.spl)+2)
	cur := r.start + headerSize
	for _, x := range r.spl {
		parts = append(parts, buf[cur:x.at], x.data)
		cur = x.at
	}
	size := r.size()
	pad := int(size) - headerSize - r.bodyLen
	parts = append(parts, buf[cur:r.metaEnd], zeros[:pad])
	return s.writeParts(buf[r.start:r.start+headerSize], parts, size)
}

// maxIov bounds the buffers of one pwritev (IOV_MAX is 1024).
const maxIov = 1000

// writeParts writes a record of size bytes (header, then parts) at the
// write offset, sealing the active segment and moving to the next first if
// it does not fit. It finishes the header (sequence, sync point). The
// caller holds mu.
func (s *Store) writeParts(hdr []byte, parts [][]byte, size int64) (rotated bool, err error) {
	if s.off+size+sealSize > s.cfg.SegmentSize {
		if err := s.rotate(); err != nil {
			return false, err
		}
		rotated = true
	}
	seg := s.active()
	h, _ := parseHeaderUnchecked(hdr)
	h.seq = seg.seq
	h.syncPoint = s.syncPoint(seg)
	putHeader(hdr, h)
	iov := make([][]byte, 0, min(len(parts)+1, maxIov))
	iov = append(iov, hdr)
	off := s.off
	flush := func() error {
		want := 0
		for _, b := range iov {
			want += len(b)
		}
		for want > 0 {
			n, err := unix.Pwritev(int(seg.f.Fd()), iov, off)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return err
			}
			if n == 0 {
				return io.ErrShortWrite
			}
			off += int64(n)
			want -= n
			for n > 0 { // a short write: skip what was written
				if n >= len(iov[0]) {
					n -= len(iov[0])
					iov = iov[1:]
				} else {
					iov[0] = iov[0][n:]
					n = 0
				}
			}
		}
		iov = iov[:0]
		return nil
	}
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if len(iov) == maxIov {
			if err := flush(); err != nil {
				return rotated, s.fail(fmt.Errorf("write %s at %d: %w", seg.path, off, err))
			}
		}
		iov = append(iov, p)
	}
	if err := flush(); err != nil {
		return rotated, s.fail(fmt.Errorf("write %s at %d: %w", seg.path, off, err))
	}
	s.off += size
	return rotated, nil
}

// parseHeaderUnchecked reads the fields of a header being built.
func parseHeaderUnchecked(b []byte) (header, bool) {
	h, st := parseHeader(b)
	if st != hdrValid {
		panic("wal: record header not built")
	}
	return h, true
}

// syncPoint is the offset of seg known durable.
func (s *Store) syncPoint(seg *segment) uint64 {
	v := s.synced.Load()
	if v>>32 != seg.seq {
		return 0
	}
	return v & 0xffffffff
}

// bumpSynced raises the durable lsn to v.
func (s *Store) bumpSynced(v uint64) {
	for {
		cur := s.synced.Load()
		if cur >= v || s.synced.CompareAndSwap(cur, v) {
			return
		}
	}
}

// rotate seals the active segment, makes it durable and moves to the
// prepared next one. Sealed segments are fully synced, which recovery
// relies on. The caller holds mu.
func (s *Store) rotate() error {
	old := s.active()
	next := old.seq + 1
	if err := s.writeSeal(old, next); err != nil {
		return err
	}
	if err := s.fsync(old.f); err != nil {
		return s.fail(fmt.Errorf("sync %s: %w", old.path, err))
	}
	s.syncs.Add(1)
	if err := s.markSynced(old, s.off, true); err != nil {
		return s.fail(err)
	}
	s.bumpSynced(lsn(old.seq, s.off))
	res := <-s.next
	if res.err != nil {
		return s.fail(res.err)
	}
	if res.seg.seq != next {
		panic(fmt.Sprintf("wal: prepared segment %d, want %d", res.seg.seq, next))
	}
	s.segs = append(s.segs, res.seg)
	s.off = 0
	s.preReq <- next + 1
	return nil
}

// writeSeal writes a seal record at the write offset of seg. The caller
// holds mu (or owns the store, during Open and Close).
func (s *Store) writeSeal(seg *segment, next uint64) error {
	var b [sealSize]byte
	body := appendUvarint(b[headerSize:headerSize], next)
	putHeader(b[:], header{bodyLen: uint32(len(body)), bodyCRC: crc(body), seq: seg.seq, syncPoint: s.syncPoint(seg), typ: recSeal})
	rec := b[:recordSize(len(body))]
	if _, err := seg.f.WriteAt(rec, s.off); err != nil {
		return s.fail(fmt.Errorf("write seal %s at %d: %w", seg.path, s.off, err))
	}
	s.off += int64(len(rec))
	return nil
}

// round is one fsync that writers wait for: it covers every record written
// before its leader took it (under mu); done is closed after the fsync, err
// set before. lead hands the leadership to a waiter of the round.
type round struct {
	done chan struct{}
	lead chan struct{}
	err  error
}

func newRound() *round { return &round{done: make(chan struct{}), lead: make(chan struct{}, 1)} }

// join returns the round that will cover everything written so far. The
// caller holds mu.
func (s *Store) join() *round { return s.round }

// await returns once round r is done. Group commit, leader/follower: a
// waiter that finds no fsync in progress becomes the leader and runs the
// round itself (no hand-off to another goroutine on the way); the others
// wait. A leader that finishes passes the leadership to a waiter of the
// next round, which covers every record written during its fsync.
func (s *Store) await(r *round) error {
	for {
		if s.syncMu.TryLock() {
			select {
			case <-r.done: // covered by the round just finished
			default:
				s.syncRound()
			}
			s.syncMu.Unlock()
			s.passLead()
		}
		select {
		case <-r.done:
			return r.err
		case <-r.lead:
		}
	}
}

// passLead wakes a waiter of the current round to lead it. Whoever
// releases syncMu calls it.
func (s *Store) passLead() {
	s.mu.RLock()
	next := s.round
	s.mu.RUnlock()
	select {
	case next.lead <- struct{}{}:
	default:
	}
}

// syncTo returns once lsn v is durable.
func (s *Store) syncTo(v uint64) error {
	if s.synced.Load() >= v {
		return nil
	}
	s.mu.RLock()
	r := s.join()
	s.mu.RUnlock()
	return s.await(r)
}

// syncRound takes the current round, fsyncs once for all its writers and
// wakes them. The caller holds syncMu.
func (s *Store) syncRound() {
	s.mu.Lock()
	r := s.round
	s.round = newRound()
	seg, off := s.active(), s.off
	target := lsn(seg.seq, off)
	s.mu.Unlock()
	switch p := s.failed.Load(); {
	case p != nil:
		r.err = storage.Errorf(storage.CodeFailed, "wal: sync: store failed: %w", *p)
	case s.synced.Load() < target:
		// Segments before seg were synced when they were sealed.
		if err := s.fsync(seg.f); err != nil {
			r.err = s.fail(fmt.Errorf("sync %s: %w", seg.path, err))
		} else {
			s.syncs.Add(1)
			if err := s.markSynced(seg, off, false); err != nil {
				r.err = s.fail(err)
			} else {
				s.bumpSynced(target)
			}
		}
	}
	close(r.done)
}

// Log returns the read side of group g.
func (s *Store) Log(g storage.GroupID) (storage.Log, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.errState("log"); err != nil {
		return nil, err
	}
	return &glog{s: s, id: g}, nil
}

// Groups lists the groups the store holds.
func (s *Store) Groups(ctx context.Context) ([]storage.GroupID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.errState("groups"); err != nil {
		return nil, err
	}
	ids := make([]storage.GroupID, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	return ids, nil
}

// Drop deletes group g: a drop record, synced as a sync=true Write is.
func (s *Store) Drop(ctx context.Context, g storage.GroupID) error {
	if err := ctx.Err(); err != nil {
		return storage.Errorf(storage.CodeInternal, "wal: drop: %w", err)
	}
	s.mu.Lock()
	if err := s.errState("drop"); err != nil {
		s.mu.Unlock()
		return err
	}
	// Nothing to drop still makes every earlier write durable, as a drop
	// record would.
	if s.groups[g] != nil {
		body := appendUvarint(nil, uint64(g))
		if _, err := s.writeRecord(buildRecord(recDrop, body)); err != nil {
			s.mu.Unlock()
			return err
		}
		delete(s.groups, g)
	}
	var r *round
	if s.cfg.Fsync == FsyncAlways && s.synced.Load() < lsn(s.active().seq, s.off) {
		r = s.join()
		s.inflight.Add(1)
	}
	s.mu.Unlock()
	s.kickReclaim()
	if r == nil {
		return nil
	}
	defer s.inflight.Done()
	return s.await(r)
}

// buildRecord returns a record of type t (header without seq and sync
// point, which writeRecord fills in).
func buildRecord(t recType, body []byte) []byte {
	rec := make([]byte, recordSize(len(body)))
	copy(rec[headerSize:], body)
	putHeader(rec, header{bodyLen: uint32(len(body)), bodyCRC: crc(body), typ: t})
	return rec
}

// Syncs is the number of fsyncs of segment data done so far.
func (s *Store) Syncs() uint64 { return s.syncs.Load() }

// Recovery reports what Open found, in particular a torn tail it cut.
func (s *Store) Recovery() Recovery { return s.recovery }

// Close waits for in-flight writes, seals the active segment, syncs it and
// releases the files. Later calls return storage.CodeClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return storage.Errorf(storage.CodeClosed, "wal: close: store closed")
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	close(s.done)
	s.bg.Wait()
	// The background goroutines are gone; nobody else touches the files.
	var err error
	if s.failed.Load() == nil {
		seg := s.active()
		if err = s.writeSeal(seg, 0); err == nil {
			if serr := s.fsync(seg.f); serr != nil {
				err = s.fail(fmt.Errorf("sync %s: %w", seg.path, serr))
			} else if merr := s.markSynced(seg, s.off, true); merr != nil {
				err = s.fail(merr)
			}
		}
	} else {
		err = s.errState("close")
	}
	select {
	case res := <-s.next:
		if res.seg != nil {
			s.closeSeg(res.seg)
		}
	default:
	}
	s.segMu.Lock() // no read is in a file
	s.mu.Lock()
	for _, seg := range s.segs {
		s.closeSeg(seg)
	}
	s.groups = nil
	s.mu.Unlock()
	s.segMu.Unlock()
	s.lock.Close()
	return err
}

// prepareLoop prepares the next segment file in the background, so that
// rotation does not wait for zeros to be written.
func (s *Store) prepareLoop() {
	defer s.bg.Done()
	for {
		select {
		case <-s.done:
			return
		case seq := <-s.preReq:
			s.dirMu.Lock()
			seg, err := s.prepare(seq)
			s.dirMu.Unlock()
			s.next <- prepResult{seg, err}
		}
	}
}

// prepare prepares segment seq (see prepareSegment), from a recycle file
// if there is one, and gives it sync mark 0. The caller holds dirMu (or
// owns the store, during Open).
func (s *Store) prepare(seq uint64) (*segment, error) {
	seg, err := prepareSegment(s.dir, seq, s.cfg.SegmentSize, s.takeRecycled())
	if err != nil {
		return nil, err
	}
	if err := s.markSynced(seg, 0, false); err != nil {
		s.closeSeg(seg)
		return nil, fmt.Errorf("wal: %w", err)
	}
	return seg, nil
}

func (s *Store) takeRecycled() uint64 {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if len(s.recycled) == 0 {
		return 0
	}
	seq := s.recycled[0]
	s.recycled = s.recycled[1:]
	return seq
}

// intervalLoop syncs every FsyncInterval under the interval policy.
func (s *Store) intervalLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.mu.RLock()
			v := lsn(s.active().seq, s.off)
			s.mu.RUnlock()
			if s.synced.Load() < v {
				_ = s.syncTo(v) // a failure fails the store
			}
		}
	}
}

func (s *Store) kickReclaim() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// reclaimLoop frees segments that hold no live entry.
func (s *Store) reclaimLoop() {
	defer s.bg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
			if err := s.reclaimOnce(); err != nil {
				s.log.Warn("wal: reclaim", "dir", s.dir, "err", err)
			}
		}
	}
}

// reclaimOnce frees the oldest segments if no live entry is in them: it
// writes a checkpoint of every group's bounds and state (which recovery
// needs once the records that set them are gone), syncs it, then recycles
// or removes the segments in ascending order, so that after a crash the
// retained segments are still consecutive.
func (s *Store) reclaimOnce() error {
	s.mu.Lock()
	if err := s.errState("reclaim"); err != nil || len(s.segs) < 2 {
		s.mu.Unlock()
		return nil
	}
	minSeq := s.active().seq
	for _, g := range s.groups {
		if len(g.ents) > 0 && g.ents[0].seg.seq < minSeq {
			minSeq = g.ents[0].seg.seq
		}
	}
	if minSeq <= s.segs[0].seq {
		rewrite := s.cfg.RewriteSegments > 0 && len(s.segs) > s.cfg.RewriteSegments
		s.mu.Unlock()
		if rewrite {
			return s.rewriteOldest()
		}
		return nil
	}
	ms := make([]groupMeta, 0, len(s.groups))
	for id, g := range s.groups {
		ms = append(ms, groupMeta{group: id, first: g.first, last: g.last(), prevTerm: g.prevTerm, state: g.state})
	}
	body := appendCheckpoint(nil, ms)
	if int64(len(body)) > s.cfg.maxBody() {
		s.mu.Unlock()
		return fmt.Errorf("checkpoint of %d groups is %d bytes, over the record limit", len(ms), len(body))
	}
	if _, err := s.writeRecord(buildRecord(recCheckpoint, body)); err != nil {
		s.mu.Unlock()
		return err
	}
	end := lsn(s.active().seq, s.off)
	s.mu.Unlock()
	if err := s.syncTo(end); err != nil {
		return err
	}
	s.segMu.Lock()
	s.mu.Lock()
	var dead []*segment
	for len(s.segs) > 1 && s.segs[0].seq < minSeq {
		dead = append(dead, s.segs[0])
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	for _, seg := range dead {
		s.closeSeg(seg)
	}
	s.segMu.Unlock()
	for _, seg := range dead {
		if err := s.retire(seg.seq); err != nil {
			return err
		}
	}
	return nil
}

// retire recycles or removes the file of a reclaimed segment, durably.
func (s *Store) retire(seq uint64) error {
	path := filepath.Join(s.dir, segName(seq))
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	s.recMu.Lock()
	keep := len(s.recycled) < s.cfg.RecycleSegments
	s.recMu.Unlock()
	var err error
	if keep {
		err = os.Rename(path, filepath.Join(s.dir, recycleName(seq)))
	} else {
		err = os.Remove(path)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("retire %s: %w", path, err)
	}
	// Before the directory sync: see syncmark.go.
	if err := s.removeMark(seq); err != nil {
		return fmt.Errorf("retire %s: %w", path, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("sync directory %s: %w", s.dir, err)
	}
	if keep {
		s.recMu.Lock()
		s.recycled = append(s.recycled, seq)
		s.recMu.Unlock()
	}
	return nil
}
