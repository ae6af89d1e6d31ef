package hashicorp

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
)

// Type is the component type name of this engine.
const Type component.Type = "hashicorp"

// Config configures the engine. The timers are hashicorp/raft's own (see
// raft.Config); the library randomises the heartbeat and election timeouts
// between 1x and 2x.
type Config struct {
	// HeartbeatTimeout is how long a follower waits without hearing from the
	// leader before it becomes a candidate; the leader heartbeats every
	// tenth of it.
	HeartbeatTimeout time.Duration `koanf:"heartbeat_timeout"`
	// ElectionTimeout is how long a candidate waits for votes.
	ElectionTimeout time.Duration `koanf:"election_timeout"`
	// LeaderLeaseTimeout is how long a leader stays leader without hearing
	// from a quorum (at most HeartbeatTimeout).
	LeaderLeaseTimeout time.Duration `koanf:"leader_lease_timeout"`
	// CommitTimeout is how long an idle leader waits before it sends an
	// append to followers to carry the commit index.
	CommitTimeout time.Duration `koanf:"commit_timeout"`
	// MaxAppendEntries bounds the entries of one append request (at most
	// 1024).
	MaxAppendEntries int `koanf:"max_append_entries"`
	// RPCTimeout bounds the wait for the answer to an append, snapshot or
	// leadership-transfer request (heartbeats wait HeartbeatTimeout, votes
	// ElectionTimeout); a lost message costs at most this.
	RPCTimeout time.Duration `koanf:"rpc_timeout"`
	// SnapshotInterval is how often the library checks SnapshotThreshold.
	SnapshotInterval time.Duration `koanf:"snapshot_interval"`
	// SnapshotThreshold is the number of entries after which the library
	// would snapshot on its own. Huge by default: snapshots are taken when
	// the host calls Compact.
	SnapshotThreshold uint64 `koanf:"snapshot_threshold"`
	// TrailingLogs is how many entries the library keeps after a snapshot.
	// Huge by default; in any case this engine never lets the library drop
	// entries: the log prefix goes only through Compact, up to the state
	// machine's snapshot index (retention decides).
	TrailingLogs uint64 `koanf:"trailing_logs"`

	_ struct{}
}

// DefaultConfig is the configuration used when nothing is overlaid: a
// 300ms heartbeat and election timeout (randomised up to 600ms), a 150ms
// leader lease, 50ms commit timeout.
func DefaultConfig() *Config {
	return &Config{
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		MaxAppendEntries:   256,
		RPCTimeout:         5 * time.Second,
		SnapshotInterval:   time.Hour,
		SnapshotThreshold:  math.MaxUint64,
		TrailingLogs:       math.MaxUint64,
	}
}

// Validate checks the config against the library's own limits.
func (c *Config) Validate() error {
	const minTimer = 5 * time.Millisecond
	switch {
	case c.HeartbeatTimeout < minTimer:
		return fmt.Errorf("hashicorp: heartbeat_timeout %v is below %v", c.HeartbeatTimeout, minTimer)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("hashicorp: election_timeout %v is below heartbeat_timeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.LeaderLeaseTimeout < minTimer || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("hashicorp: leader_lease_timeout %v must be between %v and heartbeat_timeout %v", c.LeaderLeaseTimeout, minTimer, c.HeartbeatTimeout)
	case c.CommitTimeout < time.Millisecond:
		return fmt.Errorf("hashicorp: commit_timeout %v is below 1ms", c.CommitTimeout)
	case c.MaxAppendEntries <= 0 || c.MaxAppendEntries > 1024:
		return fmt.Errorf("hashicorp: max_append_entries %d must be in [1, 1024]", c.MaxAppendEntries)
	case c.RPCTimeout <= 0:
		return fmt.Errorf("hashicorp: rpc_timeout %v must be positive", c.RPCTimeout)
	case c.SnapshotInterval < minTimer:
		return fmt.Errorf("hashicorp: snapshot_interval %v is below %v", c.SnapshotInterval, minTimer)
	case c.SnapshotThreshold == 0:
		return fmt.Errorf("hashicorp: snapshot_threshold must be positive")
	}
	return nil
}

// NewFactory returns the factory of the hashicorp raft engine.
func NewFactory() consensus.Factory {
	return consensus.NewFactory(Type, func() component.Config { return DefaultConfig() }, create)
}

func create(ctx context.Context, set component.Settings, cfg component.Config, p consensus.Params) (consensus.Engine, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("hashicorp: config is %T, want *hashicorp.Config", cfg)
	}
	return New(ctx, set, *c, p)
}
