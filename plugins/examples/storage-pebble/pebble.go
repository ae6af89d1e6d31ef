package pebblestore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// What the store hands Pebble besides the config: a logger that writes to
// the host's slog.Logger (never to stdout or the standard log package: a
// plugin's stdout carries its handshake), event handlers that log instead of
// exiting, and a file system wrapper that counts the fsyncs of the
// write-ahead log.

// slogLogger is Pebble's Logger on a slog.Logger. Pebble's informational
// messages (WAL replay, format upgrades) are debug records; its errors are
// error records.
type slogLogger struct{ log *slog.Logger }

var _ pebble.Logger = slogLogger{}

func (l slogLogger) logf(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, "pebble: "+strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (l slogLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args) }
func (l slogLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args) }

// Fatalf is what Pebble calls on a broken invariant of its own (its default
// logger exits the process). It logs the message and panics: Pebble must
// not go on, and a panic at least leaves a stack trace on stderr.
func (l slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble: fatal: " + strings.TrimSpace(msg))
	panic("pebble: fatal: " + msg)
}

// eventListener logs Pebble's events of interest to an operator. Data
// corruption is logged rather than fatal (Pebble's default): the reads
// that meet it fail with storage.CodeCorrupt.
func eventListener(log *slog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			log.Error("pebble: background error", "err", err)
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			log.Error("pebble: data corruption", "path", info.Path, "err", info.Details)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			log.Warn("pebble: write stall", "reason", info.Reason)
		},
		WriteStallEnd: func() {
			log.Info("pebble: write stall ended")
		},
	}
}

// countingFS counts the fsyncs of Pebble's write-ahead log files (created
// or recycled by Pebble's WAL manager with the name suffix ".log"), for
// Store.Syncs.
type countingFS struct {
	vfs.FS
	syncs *atomic.Uint64
}

func (fs countingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return countingFile{File: f, syncs: fs.syncs}, nil
}

func (fs countingFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.wrap(name, f, err)
}

func (fs countingFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(newname, f, err)
}

func (fs countingFS) Unwrap() vfs.FS { return fs.FS }

// countingFile counts the completed fsyncs of one file.
type countingFile struct {
	vfs.File
	syncs *atomic.Uint64
}

func (f countingFile) Sync() error {
	err := f.File.Sync()
	if err == nil {
		f.syncs.Add(1)
	}
	return err
}

func (f countingFile) SyncData() error {
	err := f.File.SyncData()
	if err == nil {
		f.syncs.Add(1)
	}
	return err
}
