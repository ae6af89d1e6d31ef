package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sync marks (Config.SyncMarks) tell a power-loss simulator what an fsync
// made durable. Segment file N.wal has a side file N.wal.synced holding a
// little-endian uint64: the write offset in the segment that the last
// successful fsync of its data covered. Bytes before it are durable; bytes
// after it may be lost (in a recycled file, bytes past the data written in
// this life are stale records of an earlier one, durable since it was
// recycled). Marks are written with pwrite and never synced: they only have
// to survive the process being killed, not the machine losing power, which
// SimulatePowerLoss then models.
//
// The order of the writes is what makes a mark trustworthy:
//
//   - A prepared segment (zero-filled or recycled, then the file and the
//     directory synced) gets mark 0 before it can be used, so a segment
//     file without a mark is one whose creation or renaming may not be
//     durable.
//   - After each fsync of a segment the mark is raised before the durable
//     offset is published (bumpSynced) and, on a seal, before the next
//     segment gets a record. So no record can claim a sync point (or a
//     sealed predecessor) past what the marks say; a mark may lag an fsync
//     only while nothing depends on it yet.
//   - A retired segment's mark is removed after the rename or removal and
//     before the directory is synced: a mark whose segment is gone but whose
//     recycle file exists means the rename may not be durable.
//   - Open raises the marks of the segments it recovered (all durable when
//     it returns: sealed ones were synced whole, it syncs the tail) and
//     removes every other mark; without SyncMarks it removes them all.

const markSuffix = ".synced"

func markName(seq uint64) string { return segName(seq) + markSuffix }

// markSynced records, with SyncMarks, that seg is durable up to off. Marks
// only go up (a sync round that finishes after the segment was sealed
// does not lower it). last closes the mark file: the segment is sealed.
func (s *Store) markSynced(seg *segment, off int64, last bool) error {
	if !s.cfg.SyncMarks {
		return nil
	}
	s.markMu.Lock()
	defer s.markMu.Unlock()
	if !seg.marked || off > seg.synced {
		if seg.mark == nil {
			f, err := os.OpenFile(seg.path+markSuffix, os.O_WRONLY|os.O_CREATE, 0o644)
			if err != nil {
				return fmt.Errorf("sync mark of %s: %w", seg.path, err)
			}
			seg.mark = f
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(off))
		if _, err := seg.mark.WriteAt(b[:], 0); err != nil {
			return fmt.Errorf("sync mark of %s: %w", seg.path, err)
		}
		seg.marked, seg.synced = true, off
	}
	if last && seg.mark != nil {
		err := seg.mark.Close()
		seg.mark = nil
		if err != nil {
			return fmt.Errorf("sync mark of %s: %w", seg.path, err)
		}
	}
	return nil
}

// closeSeg closes a segment's files.
func (s *Store) closeSeg(seg *segment) {
	seg.f.Close()
	s.markMu.Lock()
	if seg.mark != nil {
		seg.mark.Close()
		seg.mark = nil
	}
	s.markMu.Unlock()
}

// removeMark removes the mark of retired segment seq. The caller holds
// dirMu.
func (s *Store) removeMark(seq uint64) error {
	if !s.cfg.SyncMarks {
		return nil
	}
	err := os.Remove(filepath.Join(s.dir, markName(seq)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// cleanMarks removes the marks of segments Open did not retain (all of them
// without SyncMarks): left by a store killed while retiring a segment, or by
// an earlier run.
func (s *Store) cleanMarks() error {
	keep := make(map[string]bool, len(s.segs))
	if s.cfg.SyncMarks {
		for _, seg := range s.segs {
			keep[markName(seg.seq)] = true
		}
	}
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, markSuffix) || keep[name] {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
