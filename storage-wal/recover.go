package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/chronik-go/chronik/core/storage"
)

// Recovery is what Open found in the directory.
type Recovery struct {
	Segments int // segment files replayed
	Records  int // records applied
	// Truncated is set when the log ended in a torn or corrupt record (or
	// bytes that are no record): data written after the last fsync before a
	// crash. Open cut it there.
	Truncated bool
	Segment   string // the file whose tail was cut
	Offset    int64  // where its valid data ends
	Bytes     int64  // the span of discarded bytes after Offset, up to the last non-zero one
	Reason    string // what was found at Offset
	Junk      int    // later segment files that held nothing valid, recycled
}

// Open opens (creating it if need be) the store in dir and recovers it:
// it replays every segment into the index, cuts a torn tail (see Recovery)
// and fails with storage.CodeCorrupt on damage that is not a torn tail.
// logger may be nil.
func Open(ctx context.Context, dir string, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, storage.Errorf(storage.CodeInvalid, "%w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, storage.Errorf(storage.CodeInternal, "wal: open %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, storage.Errorf(storage.CodeInternal, "wal: open %s: %w", dir, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, storage.Errorf(storage.CodeInternal, "wal: open %s: directory in use by another store: %w", dir, err)
	}
	s := &Store{
		cfg:    cfg,
		dir:    dir,
		log:    logger,
		fsync:  fdatasync,
		lock:   lock,
		groups: make(map[storage.GroupID]*group),
		preReq: make(chan uint64, 1),
		next:   make(chan prepResult, 1),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),

		round: newRound(),
	}
	if err := s.recover(); err != nil {
		for _, seg := range s.segs {
			s.closeSeg(seg)
		}
		lock.Close()
		return nil, err
	}
	s.bumpSynced(lsn(s.active().seq, s.off))
	s.preReq <- s.active().seq + 1
	s.bg.Add(2)
	go s.prepareLoop()
	go s.reclaimLoop()
	if cfg.Fsync == FsyncInterval {
		s.bg.Add(1)
		go s.intervalLoop()
	}
	if len(s.segs) > 1 {
		s.kickReclaim()
	}
	return s, nil
}

// scan is how the replay of one segment ended.
type scan struct {
	end     int64 // past the last valid record
	sealed  bool  // it ended with a seal
	next    uint64
	reason  string // why it stopped, if not sealed
	garbage bool   // it stopped at bytes that are neither zero nor a stale record
}

func corrupt(format string, args ...any) error {
	return storage.Errorf(storage.CodeCorrupt, "wal: "+format, args...)
}

// recover replays the directory. Segments are replayed in order; each but
// the last must end with a seal (it was sealed and synced before the next
// got any record). The first segment that does not is the tail: what
// follows its valid records was never synced, unless a valid record of that
// segment further on says it was (its sync point lies past the damage) or a
// later segment holds a valid record, which is corruption in the middle of
// the log.
func (s *Store) recover() error {
	seqs, recycled, err := dirFiles(s.dir)
	if err != nil {
		return storage.Errorf(storage.CodeInternal, "wal: open %s: %w", s.dir, err)
	}
	s.recycled = recycled
	var maxSeq uint64
	if n := len(seqs); n > 0 {
		maxSeq = seqs[n-1]
	}
	if n := len(recycled); n > 0 {
		maxSeq = max(maxSeq, recycled[n-1])
	}
	var (
		junk       []uint64
		expect     uint64 // the seal's next segment (0: any)
		tail       *segment
		tailScan   scan
		reuseTail  bool
		buf        []byte
		lastSealed *segment
	)
	for i := 0; i < len(seqs); i++ {
		seq := seqs[i]
		if expect != 0 && seq < expect {
			junk = append(junk, seq) // left by a recovery that was interrupted
			continue
		}
		if expect != 0 && seq > expect {
			return corrupt("segment %s is missing (sealed %s names it next)", segName(expect), lastSealed.path)
		}
		seg, data, err := s.readSegment(seq, &buf)
		if err != nil {
			return err
		}
		s.segs = append(s.segs, seg)
		s.recovery.Segments++
		sc, err := s.replay(seg, data)
		if err != nil {
			return err
		}
		if sc.sealed {
			expect, lastSealed = sc.next, seg
			// Synced whole when it was sealed.
			if err := s.markSynced(seg, sc.end, true); err != nil {
				return storage.Errorf(storage.CodeInternal, "wal: %w", err)
			}
			continue
		}
		// The tail. Anything valid beyond the damage proves it was synced.
		sameSeq := false
		for off := align(sc.end); off+headerSize <= int64(len(data)); off += recordAlign {
			if h, ok := validAt(data, off); ok && h.seq == seq {
				sameSeq = true
				if h.syncPoint > uint64(sc.end) {
					return corrupt("segment %s: %s at offset %d, but the record at %d was written after offset %d was synced",
						seg.path, sc.reason, sc.end, off, h.syncPoint)
				}
			}
		}
		tail, tailScan = seg, sc
		reuseTail = sc.end == 0 && !sameSeq && int64(len(data)) == s.cfg.SegmentSize
		if sc.garbage {
			s.recovery.Truncated = true
			s.recovery.Segment = seg.path
			s.recovery.Offset = sc.end
			s.recovery.Reason = sc.reason
			s.recovery.Bytes = lastNonZero(data[sc.end:])
		}
		// data is not used below: buf is reused for the later segments.
		for _, later := range seqs[i+1:] {
			_, ldata, err := s.readSegment(later, &buf)
			if err != nil {
				return err
			}
			for off := int64(0); off+headerSize <= int64(len(ldata)); off += recordAlign {
				if h, ok := validAt(ldata, off); ok && h.seq == later {
					return corrupt("segment %s: %s at offset %d, but later segment %s holds data",
						seg.path, sc.reason, sc.end, segName(later))
				}
			}
			junk = append(junk, later)
		}
		break
	}
	if s.ckptErr != nil {
		return corrupt("the last checkpoint does not match the log: %v", s.ckptErr)
	}
	if expect != 0 && tail == nil && expect > maxSeq {
		return corrupt("segment %s is missing (sealed %s names it next)", segName(expect), lastSealed.path)
	}
	switch {
	case reuseTail:
		// Nothing of this segment's own was ever written: write into it.
		// It was prepared (synced) before its predecessor named it.
		s.off = 0
		if err := s.markSynced(tail, 0, false); err != nil {
			return storage.Errorf(storage.CodeInternal, "wal: %w", err)
		}
	default:
		seg, err := s.prepare(maxSeq + 1)
		if err != nil {
			return storage.Errorf(storage.CodeInternal, "%w", err)
		}
		if tail != nil {
			// Seal the tail where its valid data ends: whatever lies beyond
			// is never read again.
			// A tail cut short by the crash grows to hold the seal.
			s.off = align(tailScan.end)
			if err := s.writeSeal(tail, seg.seq); err != nil {
				s.closeSeg(seg)
				return err
			}
			if err := unix.Fsync(int(tail.f.Fd())); err != nil {
				s.closeSeg(seg)
				return storage.Errorf(storage.CodeFailed, "wal: sync %s: %w", tail.path, err)
			}
			if err := s.markSynced(tail, s.off, true); err != nil {
				s.closeSeg(seg)
				return storage.Errorf(storage.CodeInternal, "wal: %w", err)
			}
		}
		s.segs = append(s.segs, seg)
		s.off = 0
	}
	if s.recovery.Truncated {
		s.log.Warn("wal: cut a torn tail", "segment", s.recovery.Segment, "offset", s.recovery.Offset,
			"bytes", s.recovery.Bytes, "reason", s.recovery.Reason)
	}
	for _, seq := range junk {
		if err := s.retire(seq); err != nil {
			return storage.Errorf(storage.CodeInternal, "wal: %w", err)
		}
		s.recovery.Junk++
	}
	if err := s.cleanMarks(); err != nil {
		return storage.Errorf(storage.CodeInternal, "wal: remove stale sync marks: %w", err)
	}
	return nil
}

// readSegment opens segment seq and reads it whole into *buf.
func (s *Store) readSegment(seq uint64, buf *[]byte) (*segment, []byte, error) {
	path := filepath.Join(s.dir, segName(seq))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, storage.Errorf(storage.CodeInternal, "wal: open segment %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, storage.Errorf(storage.CodeInternal, "wal: stat segment %s: %w", path, err)
	}
	if fi.Size() > MaxSegmentSize {
		f.Close()
		return nil, nil, corrupt("segment %s is %d bytes, over the limit %d", path, fi.Size(), MaxSegmentSize)
	}
	if int64(cap(*buf)) < fi.Size() {
		*buf = make([]byte, fi.Size())
	}
	data := (*buf)[:fi.Size()]
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, nil, storage.Errorf(storage.CodeInternal, "wal: read segment %s: %w", path, err)
	}
	return &segment{seq: seq, path: path, f: f}, data, nil
}

// validAt reports whether a complete, checksummed record starts at off.
func validAt(data []byte, off int64) (header, bool) {
	h, st := parseHeader(data[off:])
	if st != hdrValid {
		return h, false
	}
	end := off + headerSize + int64(h.bodyLen)
	if end > int64(len(data)) || !bodyValid(h.typ, data[off+headerSize:end], h.bodyCRC) {
		return h, false
	}
	return h, true
}

func lastNonZero(b []byte) int64 {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return int64(i + 1)
		}
	}
	return 0
}

// replay applies the records of one segment to the index.
func (s *Store) replay(seg *segment, data []byte) (scan, error) {
	var sc scan
	size := int64(len(data))
	for off := int64(0); ; {
		if off+headerSize > size {
			sc.reason = "end of file"
			sc.garbage = off < size && lastNonZero(data[off:]) > 0
			return sc, nil
		}
		h, st := parseHeader(data[off:])
		switch {
		case st == hdrZero:
			sc.reason = "zeros"
			sc.garbage = lastNonZero(data[off:]) > 0
			return sc, nil
		case st == hdrGarbage:
			sc.reason, sc.garbage = "bad header checksum", true
			return sc, nil
		case h.seq != seg.seq:
			sc.reason = fmt.Sprintf("stale record of segment %d", h.seq)
			return sc, nil
		}
		end := off + headerSize + int64(h.bodyLen)
		if end > size {
			sc.reason, sc.garbage = "record past the end of the file", true
			return sc, nil
		}
		body := data[off+headerSize : end]
		if !bodyValid(h.typ, body, h.bodyCRC) {
			sc.reason, sc.garbage = "bad body checksum", true
			return sc, nil
		}
		if err := s.applyRecord(seg, h.typ, body, off+headerSize); err != nil {
			return sc, corrupt("segment %s at %d: %v", seg.path, off, err)
		}
		s.recovery.Records++
		off = align(end)
		sc.end = min(off, size)
		if h.typ == recSeal {
			next, _ := decodeUvarintBody(body)
			sc.sealed, sc.next = true, next
			return sc, nil
		}
	}
}

// applyRecord applies one record read back from seg; bodyOff is the file
// offset of its body.
func (s *Store) applyRecord(seg *segment, t recType, body []byte, bodyOff int64) error {
	switch t {
	case recBatch:
		gws, err := decodeBatch(body)
		if err != nil {
			return err
		}
		for i := range gws {
			w := &gws[i]
			if w.reset == nil && len(w.entries) == 0 && w.state == nil && w.truncBefore == 0 {
				continue
			}
			o := op{reset: w.reset, truncBefore: w.truncBefore, state: bytes.Clone(w.state)}
			if len(w.entries) > 0 {
				o.first = w.entries[0].index
				o.locs = make([]loc, len(w.entries))
				for k, e := range w.entries {
					o.locs[k] = loc{seg: seg, off: uint32(bodyOff + int64(e.off)), n: uint32(e.n), crc: e.crc, kind: e.kind, term: e.term}
				}
			}
			g := s.groups[w.group]
			if g == nil {
				g = newGroup()
				s.groups[w.group] = g
			}
			g.apply(&o, true)
		}
	case recRelocate:
		gws, err := decodeBatch(body)
		if err != nil {
			return err
		}
		for _, w := range gws {
			if len(w.entries) == 0 || w.reset != nil || w.state != nil || w.truncBefore != 0 {
				return fmt.Errorf("malformed relocate record")
			}
			locs := make([]loc, len(w.entries))
			for k, e := range w.entries {
				locs[k] = loc{seg: seg, off: uint32(bodyOff + int64(e.off)), n: uint32(e.n), crc: e.crc, kind: e.kind, term: e.term}
			}
			g := s.groups[w.group]
			if g == nil {
				g = newGroup()
				s.groups[w.group] = g
			}
			g.relocate(w.entries[0].index, locs)
		}
	case recDrop:
		id, err := decodeUvarintBody(body)
		if err != nil {
			return err
		}
		delete(s.groups, storage.GroupID(id))
	case recCheckpoint:
		ms, err := decodeCheckpoint(body)
		if err != nil {
			return err
		}
		var missing error
		defer func() { s.ckptErr = missing }()
		keep := make(map[storage.GroupID]bool, len(ms))
		for _, m := range ms {
			keep[m.group] = true
			g := s.groups[m.group]
			if g == nil {
				g = newGroup()
				s.groups[m.group] = g
			}
			g.state = bytes.Clone(m.state)
			lo, hi := max(g.first, m.first), min(g.last(), m.last)
			switch {
			case m.last < m.first: // no entries
				g.first, g.prevTerm, g.ents = m.first, m.prevTerm, nil
			case len(g.ents) > 0 && lo == m.first && hi == m.last:
				g.ents = g.ents[lo-g.first : hi-g.first+1]
				g.first, g.prevTerm = m.first, m.prevTerm
			default:
				// Entries missing: legitimate only if a later checkpoint
				// (whose reclaim removed them) follows.
				missing = fmt.Errorf("checkpoint: group %d holds [%d, %d], entries [%d, %d] found", m.group, m.first, m.last, g.first, g.last())
				if len(g.ents) > 0 && lo <= hi {
					g.ents = g.ents[lo-g.first : hi-g.first+1]
					g.first, g.prevTerm = lo, 0
				} else {
					g.first, g.prevTerm, g.ents = m.first, m.prevTerm, nil
				}
			}
		}
		for id := range s.groups {
			if !keep[id] {
				delete(s.groups, id)
			}
		}
	case recSeal:
		if _, err := decodeUvarintBody(body); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown record type %d", t)
	}
	return nil
}
