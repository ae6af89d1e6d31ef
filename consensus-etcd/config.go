package etcd

import (
	"context"
	"fmt"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
)

// Type is the component type name of this engine.
const Type component.Type = "etcd"

// Config configures the engine. Election and heartbeat intervals are counted
// in ticks of TickInterval.
type Config struct {
	// TickInterval is Raft's logical clock period.
	TickInterval time.Duration `koanf:"tick_interval"`
	// ElectionTicks is the election timeout in ticks (randomized by Raft
	// between 1x and 2x).
	ElectionTicks int `koanf:"election_ticks"`
	// HeartbeatTicks is the leader's heartbeat period in ticks.
	HeartbeatTicks int `koanf:"heartbeat_ticks"`
	// Workers is the size of the worker pool (0: 4).
	Workers int `koanf:"workers"`
	// MaxBatchGroups bounds the groups one worker handles in one storage
	// write.
	MaxBatchGroups int `koanf:"max_batch_groups"`
	// MaxInflightMsgs bounds the append messages in flight per follower.
	MaxInflightMsgs int `koanf:"max_inflight_msgs"`
	// MaxSizePerMsg bounds the entry bytes of one append message (at least
	// one entry is always sent).
	MaxSizePerMsg uint64 `koanf:"max_size_per_msg"`
	// Quiesce lets idle groups stop ticking.
	Quiesce bool `koanf:"quiesce"`

	_ struct{}
}

// DefaultConfig is the configuration used when nothing is overlaid:
// 10ms ticks, 300ms election timeout, 30ms heartbeats.
func DefaultConfig() *Config {
	return &Config{
		TickInterval:    10 * time.Millisecond,
		ElectionTicks:   30,
		HeartbeatTicks:  3,
		Workers:         4,
		MaxBatchGroups:  64,
		MaxInflightMsgs: 256,
		MaxSizePerMsg:   4 << 20,
		Quiesce:         true,
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	switch {
	case c.TickInterval <= 0:
		return fmt.Errorf("etcd: tick_interval %v must be positive", c.TickInterval)
	case c.HeartbeatTicks <= 0:
		return fmt.Errorf("etcd: heartbeat_ticks %d must be positive", c.HeartbeatTicks)
	case c.ElectionTicks <= c.HeartbeatTicks:
		return fmt.Errorf("etcd: election_ticks %d must exceed heartbeat_ticks %d", c.ElectionTicks, c.HeartbeatTicks)
	case c.Workers < 0:
		return fmt.Errorf("etcd: workers %d is negative", c.Workers)
	case c.MaxBatchGroups < 0:
		return fmt.Errorf("etcd: max_batch_groups %d is negative", c.MaxBatchGroups)
	case c.MaxInflightMsgs <= 0:
		return fmt.Errorf("etcd: max_inflight_msgs %d must be positive", c.MaxInflightMsgs)
	case c.MaxSizePerMsg == 0:
		return fmt.Errorf("etcd: max_size_per_msg must be positive")
	}
	return nil
}

func (c *Config) electionTimeout() time.Duration {
	return time.Duration(c.ElectionTicks) * c.TickInterval
}

// NewFactory returns the factory of the etcd raft engine.
func NewFactory() consensus.Factory {
	return consensus.NewFactory(Type, func() component.Config { return DefaultConfig() }, create)
}

func create(ctx context.Context, set component.Settings, cfg component.Config, p consensus.Params) (consensus.Engine, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("etcd: config is %T, want *etcd.Config", cfg)
	}
	return New(ctx, set, *c, p)
}
