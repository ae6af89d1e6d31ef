package broker

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
)

// Config is the broker's own configuration (the `broker` section, plus the
// node identity and cluster membership the host fills in).
type Config struct {
	// NodeID is this broker's id, unique in the cluster, > 0.
	NodeID int32 `koanf:"-"`
	// ClusterID is reported to clients in Metadata and DescribeCluster.
	ClusterID string `koanf:"-"`
	// Advertised is the host:port clients are told to reach this broker at.
	Advertised string `koanf:"-"`
	// Brokers are every broker of the cluster, this one included, with the
	// address clients reach it at. The metadata group is bootstrapped with
	// their ids: every broker must list the same set. Empty: this broker
	// alone.
	Brokers []protocol.Broker `koanf:"-"`

	AutoCreateTopics         bool          `koanf:"auto_create_topics"`
	DefaultPartitions        int32         `koanf:"default_partitions"`
	DefaultReplicationFactor int16         `koanf:"default_replication_factor"`
	MaxMessageBytes          int32         `koanf:"max_message_bytes"`
	BalanceInterval          time.Duration `koanf:"balance_interval"`
	// ProduceTimeout bounds how long a produce waits for commit when the
	// client's own timeout is larger.
	ProduceTimeout time.Duration `koanf:"produce_timeout"`
	// RetentionCheckInterval is how often a partition leader applies the
	// topic's retention.ms and retention.bytes (by proposing a truncation
	// of the log prefix, which every replica applies).
	RetentionCheckInterval time.Duration `koanf:"retention_check_interval"`
	// LinearizableReads makes Fetch, ListOffsets, OffsetFetch and
	// DeleteRecords confirm leadership with a quorum round
	// (consensus.Group.ReadBarrier, shared by concurrent reads) before they
	// read the watermarks, records or committed offsets they answer with. With false, a leader cut off from
	// the others can answer reads from stale state for up to an election
	// timeout: watermarks and committed offsets may then go backwards.
	LinearizableReads bool `koanf:"linearizable_reads"`

	// OffsetsTopicPartitions is the partition count of __consumer_offsets
	// when it is created (on the first FindCoordinator). Once the topic
	// exists its actual partition count decides where groups live.
	OffsetsTopicPartitions int32 `koanf:"offsets_topic_partitions"`
	// GroupInitialRebalanceDelay holds an empty group's first join phase
	// open so that members starting together join one generation.
	GroupInitialRebalanceDelay time.Duration `koanf:"group_initial_rebalance_delay"`
	// GroupMinSessionTimeout is the shortest session timeout a group
	// member may ask for (INVALID_SESSION_TIMEOUT otherwise).
	GroupMinSessionTimeout time.Duration `koanf:"group_min_session_timeout"`
	// GroupMaxSessionTimeout is the longest session timeout a group member
	// may ask for (INVALID_SESSION_TIMEOUT otherwise).
	GroupMaxSessionTimeout time.Duration `koanf:"group_max_session_timeout"`

	_ struct{}
}

// DefaultConfig returns the broker defaults.
func DefaultConfig() Config {
	return Config{
		NodeID:                   1,
		ClusterID:                "chronik",
		AutoCreateTopics:         true,
		DefaultPartitions:        1,
		DefaultReplicationFactor: 1,
		MaxMessageBytes:          1048588, // Kafka's default
		BalanceInterval:          5 * time.Second,
		ProduceTimeout:           30 * time.Second,
		RetentionCheckInterval:   30 * time.Second,
		LinearizableReads:        true,

		OffsetsTopicPartitions:     50, // Kafka's offsets.topic.num.partitions
		GroupInitialRebalanceDelay: 3 * time.Second,
		GroupMinSessionTimeout:     6 * time.Second,
		GroupMaxSessionTimeout:     30 * time.Minute,
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeID <= 0 {
		errs = append(errs, fmt.Errorf("node id must be > 0, got %d", c.NodeID))
	}
	if c.Advertised != "" {
		if _, _, err := net.SplitHostPort(c.Advertised); err != nil {
			errs = append(errs, fmt.Errorf("advertised address %q: %w", c.Advertised, err))
		}
	}
	if c.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("broker.default_partitions must be >= 1, got %d", c.DefaultPartitions))
	}
	if c.DefaultReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("broker.default_replication_factor must be >= 1, got %d", c.DefaultReplicationFactor))
	}
	if c.MaxMessageBytes < 1024 {
		errs = append(errs, fmt.Errorf("broker.max_message_bytes must be >= 1024, got %d", c.MaxMessageBytes))
	}
	if c.RetentionCheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("broker.retention_check_interval must be > 0, got %v", c.RetentionCheckInterval))
	}
	if c.BalanceInterval <= 0 || c.ProduceTimeout <= 0 {
		errs = append(errs, errors.New("broker.balance_interval and broker.produce_timeout must be > 0"))
	}
	if c.OffsetsTopicPartitions < 1 || c.OffsetsTopicPartitions > 10000 {
		errs = append(errs, fmt.Errorf("broker.offsets_topic_partitions must be in 1..10000, got %d", c.OffsetsTopicPartitions))
	}
	if c.GroupInitialRebalanceDelay < 0 || c.GroupMinSessionTimeout <= 0 || c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout {
		errs = append(errs, errors.New("broker.group_initial_rebalance_delay must be >= 0 and 0 < broker.group_min_session_timeout <= broker.group_max_session_timeout"))
	}
	return errors.Join(errs...)
}
