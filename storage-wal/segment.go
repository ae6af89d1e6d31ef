package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// segment is one segment file. Its records start at offset 0; the file is
// preallocated to its full size, so writing into it never grows it.
type segment struct {
	seq  uint64
	path string
	f    *os.File

	// With Config.SyncMarks, under Store.markMu: the open sync mark file
	// (nil when closed), whether a mark was recorded and the offset it
	// holds. See syncmark.go.
	mark   *os.File
	marked bool
	synced int64
}

const (
	segSuffix     = ".wal"
	recycleSuffix = ".recycle"
	lockName      = "LOCK"
)

func segName(seq uint64) string     { return fmt.Sprintf("%016x%s", seq, segSuffix) }
func recycleName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, recycleSuffix) }

// parseName returns the sequence number in a segment or recycle file name.
func parseName(name, suffix string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, suffix)
	if !ok || len(base) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(base, 16, 64)
	return seq, err == nil && seq > 0
}

// dirFiles lists the segment and recycle files of dir, each by ascending
// sequence number.
func dirFiles(dir string) (segs, recycled []uint64, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, de := range des {
		if seq, ok := parseName(de.Name(), segSuffix); ok {
			segs = append(segs, seq)
		} else if seq, ok := parseName(de.Name(), recycleSuffix); ok {
			recycled = append(recycled, seq)
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	sort.Slice(recycled, func(i, j int) bool { return recycled[i] < recycled[j] })
	return segs, recycled, nil
}

// syncDir makes the directory's entries (creations, renames, removals)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Fsync(int(d.Fd()))
}

// fdatasync is the default sync of segment data.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

var zeros = make([]byte, 1<<20)

// prepareSegment makes segment file seq of size bytes ready to be written:
// a recycled file renamed (its stale records carry older sequence numbers,
// so they read as the end of the data) or a new file filled with zeros, so
// that writing into it is an overwrite (an fdatasync after an append that
// grows a file costs several times more). The file and its directory entry
// are durable on return. recycled is the sequence of a recycle file to use,
// or 0.
func prepareSegment(dir string, seq uint64, size int64, recycled uint64) (*segment, error) {
	path := filepath.Join(dir, segName(seq))
	var f *os.File
	var err error
	if recycled != 0 {
		if err = os.Rename(filepath.Join(dir, recycleName(recycled)), path); err == nil {
			f, err = os.OpenFile(path, os.O_RDWR, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("wal: recycle segment %s: %w", path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: recycle segment %s: %w", path, err)
		}
		if err := fillZeros(f, fi.Size(), size); err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: recycle segment %s: %w", path, err)
		}
	} else {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("wal: create segment %s: %w", path, err)
		}
		if err := fillZeros(f, 0, size); err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: preallocate segment %s: %w", path, err)
		}
	}
	if err := unix.Fsync(int(f.Fd())); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: sync segment %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: sync directory %s: %w", dir, err)
	}
	return &segment{seq: seq, path: path, f: f}, nil
}

// fillZeros writes zeros to f from off to size.
func fillZeros(f *os.File, off, size int64) error {
	for off < size {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}
