package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// The units of a torn write: the page cache writes pages back in any
// order, and a disk losing power mid-page may have written a prefix of its
// sectors.
const (
	pageSize   = 4 << 10
	sectorSize = 512
)

// PowerLoss reports what SimulatePowerLoss did to a directory.
type PowerLoss struct {
	Files []FileLoss // one per segment file, by ascending sequence
}

// FileLoss reports what SimulatePowerLoss did to one segment file.
type FileLoss struct {
	Name string
	// Marked: the file had a sync mark. A file without one may not have
	// been durably created (see Removed and Size).
	Marked bool
	// Synced is the synced length: no byte before it was changed.
	Synced int64
	// Unsynced is how many bytes of the segment's own records follow
	// Synced: written, never synced. The pages below are of that span.
	Unsynced int64
	// Pages (4 KiB, aligned to the file) of the unsynced span that
	// survived whole, reverted to zeros, or were torn (a prefix of their
	// 512-byte sectors survived, zeros after it).
	Kept, Lost, Torn int
	// Flipped is the number of bytes of the unsynced span flipped.
	Flipped int
	// Removed: the file vanished (its creation or renaming was not
	// durable).
	Removed bool
	// Size is the file's size afterwards; -1 when it was removed.
	Size int64
	// Restored: a retired segment's recycle file went back to its segment
	// name (the rename was not durable).
	Restored bool
}

// Damaged reports whether the simulation changed anything in the file.
func (f FileLoss) Damaged() bool {
	return f.Lost > 0 || f.Torn > 0 || f.Flipped > 0 || f.Removed || f.Restored
}

// String is a report for logs, one line per file.
func (p PowerLoss) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "power loss: %d segment files", len(p.Files))
	for _, f := range p.Files {
		fmt.Fprintf(&b, "\n  %s: ", f.Name)
		switch {
		case f.Removed:
			b.WriteString("no sync mark, removed")
			continue
		case f.Restored:
			b.WriteString("restored from its recycle file, ")
		case !f.Marked:
			b.WriteString("no sync mark, ")
		}
		fmt.Fprintf(&b, "synced %d, %d unsynced bytes", f.Synced, f.Unsynced)
		if f.Unsynced > 0 {
			fmt.Fprintf(&b, " (pages: %d kept, %d lost, %d torn; %d bytes flipped)", f.Kept, f.Lost, f.Torn, f.Flipped)
		}
		fmt.Fprintf(&b, ", size %d", f.Size)
	}
	return b.String()
}

// SimulatePowerLoss turns dir, the directory of a store that ran with
// Config.SyncMarks and whose process was killed (SIGKILL: the page cache
// still holds every write), into what a power loss at that moment could
// leave on disk. No process may have the directory open.
//
// It models, from the sync marks (see Config.SyncMarks), with every choice
// drawn from rng so that a seed replays it:
//
//   - Bytes a completed fsync covered are durable: nothing before a
//     segment's synced length changes.
//   - The segment's own records written after it (up to the end of that
//     run of records) were not synced. Walking them in 4 KiB pages aligned
//     to the file, each page survives whole, is lost or is torn: a random
//     prefix of its 512-byte sectors survives. Lost bytes become zeros,
//     which is what a zero-filled segment held before; in a recycled file
//     they held stale records of its previous life, which recovery tells
//     apart from zeros only by reason (both end the data). Sometimes a byte
//     or two of the span is also flipped. Bytes past the span (zeros, or
//     stale records of a recycled file, synced when it was prepared) stay.
//   - A segment file without a mark was still being prepared: its creation
//     (or rename from a recycle file) was not yet durable, so half of the
//     time it vanishes; if it is all zeros, its size may not be durable
//     either, and it may be cut to a random number of pages.
//   - A segment being retired (renamed to its recycle file, directory not
//     yet synced) may be back under its segment name.
//
// Directory entries and segments synced whole (sealed ones, prepared ones)
// are otherwise durable, as the store syncs them. Recycle files are left
// alone. The sync marks are removed: the next Open of the store writes its
// own.
func SimulatePowerLoss(dir string, rng *rand.Rand) (PowerLoss, error) {
	var pl PowerLoss
	if lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0); err == nil {
		defer lock.Close()
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			return pl, fmt.Errorf("wal: power loss in %s: directory in use by a store: %w", dir, err)
		}
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return pl, fmt.Errorf("wal: power loss in %s: %w", dir, err)
	}
	var segs []uint64
	isSeg, isRecycled := make(map[uint64]bool), make(map[uint64]bool)
	marks := make(map[uint64]int64)
	var markFiles []string
	for _, de := range des {
		name := de.Name()
		if seq, ok := parseName(name, segSuffix); ok {
			segs = append(segs, seq)
			isSeg[seq] = true
		} else if seq, ok := parseName(name, recycleSuffix); ok {
			isRecycled[seq] = true
		} else if base, ok := strings.CutSuffix(name, markSuffix); ok {
			markFiles = append(markFiles, name)
			seq, ok := parseName(base, segSuffix)
			if !ok {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return pl, fmt.Errorf("wal: power loss in %s: %w", dir, err)
			}
			if len(b) != 8 {
				return pl, fmt.Errorf("wal: power loss in %s: sync mark %s is %d bytes, want 8", dir, name, len(b))
			}
			marks[seq] = int64(binary.LittleEndian.Uint64(b))
		}
	}
	if len(segs) > 0 && len(marks) == 0 {
		return pl, fmt.Errorf("wal: power loss in %s: no sync marks (did the store run with sync_marks?)", dir)
	}
	restored := make(map[uint64]bool)
	for seq := range marks {
		if isSeg[seq] || !isRecycled[seq] || rng.IntN(2) == 0 {
			continue
		}
		if err := os.Rename(filepath.Join(dir, recycleName(seq)), filepath.Join(dir, segName(seq))); err != nil {
			return pl, fmt.Errorf("wal: power loss in %s: %w", dir, err)
		}
		segs = append(segs, seq)
		restored[seq] = true
	}
	// Ascending order, so that the report and the rng draws follow the log.
	slices.Sort(segs)
	for _, seq := range segs {
		synced, marked := marks[seq]
		fl, err := losePower(filepath.Join(dir, segName(seq)), seq, synced, marked, rng)
		if err != nil {
			return pl, fmt.Errorf("wal: power loss in %s: %w", dir, err)
		}
		fl.Restored = restored[seq]
		pl.Files = append(pl.Files, fl)
	}
	for _, name := range markFiles {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return pl, fmt.Errorf("wal: power loss in %s: %w", dir, err)
		}
	}
	return pl, nil
}

// losePower applies a power loss to one segment file; see
// SimulatePowerLoss.
func losePower(path string, seq uint64, synced int64, marked bool, rng *rand.Rand) (FileLoss, error) {
	fl := FileLoss{Name: filepath.Base(path), Marked: marked, Synced: synced}
	data, err := os.ReadFile(path)
	if err != nil {
		return fl, err
	}
	if !marked {
		fl.Synced = 0
		if rng.IntN(2) == 0 {
			fl.Removed, fl.Size = true, -1
			return fl, os.Remove(path)
		}
		if allZero(data) && rng.IntN(2) == 0 {
			n := rng.Int64N(int64(len(data))/pageSize+1) * pageSize
			if err := os.Truncate(path, n); err != nil {
				return fl, err
			}
			data = data[:n]
		}
	}
	fl.Size = int64(len(data))
	lo := min(fl.Synced, fl.Size)
	hi := lo
	for hi+headerSize <= fl.Size {
		h, ok := validAt(data, hi)
		if !ok || h.seq != seq {
			break
		}
		hi = min(align(hi+headerSize+int64(h.bodyLen)), fl.Size)
	}
	fl.Unsynced = hi - lo
	if hi == lo {
		return fl, nil
	}
	keep := [...]int{100, 75, 50, 0}[rng.IntN(4)] // percent of pages kept whole
	for p := lo &^ (pageSize - 1); p < hi; p += pageSize {
		from, to := max(p, lo), min(p+pageSize, hi)
		switch {
		case rng.IntN(100) < keep:
			fl.Kept++
		case rng.IntN(2) == 0:
			clear(data[from:to])
			fl.Lost++
		default:
			cut := p + (1+rng.Int64N(pageSize/sectorSize-1))*sectorSize
			if cut := max(cut, from); cut < to {
				clear(data[cut:to])
			}
			fl.Torn++
		}
	}
	if rng.IntN(4) == 0 {
		for range 1 + rng.IntN(2) {
			data[lo+rng.Int64N(hi-lo)] ^= byte(1 + rng.IntN(255))
			fl.Flipped++
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fl, err
	}
	if _, err := f.WriteAt(data[lo:hi], lo); err != nil {
		f.Close()
		return fl, err
	}
	return fl, f.Close()
}
