package wal

import (
	"context"
	"fmt"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/storage"
)

// Type is the component type name of the on-disk store.
const Type component.Type = "wal"

// FsyncPolicy says when the store makes writes durable.
type FsyncPolicy string

const (
	// FsyncAlways: a Write with sync=true returns after an fsync that covers
	// it; concurrent Writes share that fsync (group commit).
	FsyncAlways FsyncPolicy = "always"
	// FsyncInterval: no Write waits; a background loop fsyncs every
	// Config.FsyncInterval. A crash loses at most about that much.
	FsyncInterval FsyncPolicy = "interval"
	// FsyncNever: the store only fsyncs when it seals a segment and on
	// Close; the kernel writes the rest back when it likes.
	FsyncNever FsyncPolicy = "never"
)

// Config configures the on-disk store.
type Config struct {
	// SegmentSize is the size of each segment file, preallocated (filled
	// with zeros, or recycled) before it is written to. A record larger than
	// a segment is refused with storage.CodeTooLarge, so it also bounds the
	// largest GroupWrite (MaxEntrySize).
	SegmentSize int64 `koanf:"segment_size"`
	// Fsync is the fsync policy: always (default), interval or never.
	Fsync FsyncPolicy `koanf:"fsync"`
	// FsyncInterval is the period of the background fsync under the
	// interval policy.
	FsyncInterval time.Duration `koanf:"fsync_interval"`
	// RecycleSegments is how many reclaimed segment files are kept to be
	// reused instead of preallocating new ones.
	RecycleSegments int `koanf:"recycle_segments"`
	// RewriteSegments: when more segments than this are retained, the live
	// entries of the oldest one (groups that have not truncated for a long
	// time) are rewritten at the head of the log so that it can be
	// reclaimed. 0 never rewrites.
	RewriteSegments int `koanf:"rewrite_segments"`
	// SyncMarks is for fault-injection tests: after each fsync of segment
	// data the store records, without fsync, the synced length of that
	// segment in a small side file (<segment>.synced), so that a power-loss
	// simulator (SimulatePowerLoss) knows what was durable when the process
	// was killed. It costs one small pwrite per fsync.
	SyncMarks bool `koanf:"sync_marks"`

	_ struct{}
}

// Limits on SegmentSize: offsets within a segment are 32 bits.
const (
	MinSegmentSize = 4 << 10
	MaxSegmentSize = 1 << 30
)

// DefaultConfig returns the defaults: 64 MiB segments, fsync always.
func DefaultConfig() *Config {
	return &Config{
		SegmentSize:     64 << 20,
		Fsync:           FsyncAlways,
		FsyncInterval:   10 * time.Millisecond,
		RecycleSegments: 4,
		RewriteSegments: 16,
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.SegmentSize < MinSegmentSize || c.SegmentSize > MaxSegmentSize {
		return fmt.Errorf("wal: segment_size %d out of range [%d, %d]", c.SegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	if c.SegmentSize%recordAlign != 0 {
		return fmt.Errorf("wal: segment_size %d is not a multiple of %d", c.SegmentSize, recordAlign)
	}
	switch c.Fsync {
	case FsyncAlways, FsyncNever:
	case FsyncInterval:
		if c.FsyncInterval <= 0 {
			return fmt.Errorf("wal: fsync_interval must be positive with fsync: interval")
		}
	default:
		return fmt.Errorf("wal: fsync %q: want always, interval or never", c.Fsync)
	}
	if c.RewriteSegments < 0 {
		return fmt.Errorf("wal: rewrite_segments %d is negative", c.RewriteSegments)
	}
	if c.RecycleSegments < 0 {
		return fmt.Errorf("wal: recycle_segments %d is negative", c.RecycleSegments)
	}
	return nil
}

// MaxEntrySize is the largest entry Data a store with this config accepts
// (in a GroupWrite of its own, with a small state).
func (c *Config) MaxEntrySize() int {
	return int(c.maxBody()) - 256
}

// maxBody is the largest record body: a record and a seal fit a segment.
func (c *Config) maxBody() int64 {
	return c.SegmentSize - 2*headerSize - sealBodyMax - recordAlign
}

// NewFactory returns the factory of the on-disk store, which opens the
// store in Settings.DataDir.
func NewFactory() storage.Factory {
	return storage.NewFactory(Type, func() component.Config { return DefaultConfig() }, create)
}

func create(ctx context.Context, set component.Settings, cfg component.Config) (storage.Store, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("wal: config is %T, want *wal.Config", cfg)
	}
	if set.DataDir == "" {
		return nil, fmt.Errorf("wal: no data directory")
	}
	return Open(ctx, set.DataDir, *c, set.Logger)
}
