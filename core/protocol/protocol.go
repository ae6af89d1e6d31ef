package protocol

import (
	"context"
	"time"

	"github.com/chronik-go/chronik/core/component"
)

// Server is a running protocol listener.
type Server interface {
	// Addr is the address the server listens on.
	Addr() string
	// Shutdown stops accepting, finishes or cancels in-flight requests and
	// closes every connection.
	Shutdown(ctx context.Context) error
}

// Factory builds a protocol Server. It is sealed: only NewFactory makes one.
type Factory interface {
	Type() component.Type
	DefaultConfig() component.Config
	Create(ctx context.Context, set component.Settings, cfg component.Config, host Host) (Server, error)
	sealed()
}

// CreateFunc starts a Server.
type CreateFunc func(ctx context.Context, set component.Settings, cfg component.Config, host Host) (Server, error)

// NewFactory returns a Factory for type t.
func NewFactory(t component.Type, defaults func() component.Config, create CreateFunc) Factory {
	return &factory{t: t, defaults: defaults, create: create}
}

type factory struct {
	t        component.Type
	defaults func() component.Config
	create   CreateFunc
}

func (f *factory) Type() component.Type            { return f.t }
func (f *factory) DefaultConfig() component.Config { return f.defaults() }
func (f *factory) sealed()                         {}

func (f *factory) Create(ctx context.Context, set component.Settings, cfg component.Config, host Host) (Server, error) {
	if err := component.Validate(cfg); err != nil {
		return nil, err
	}
	c, err := f.create(ctx, set.WithDefaults(), cfg, host)
	if err != nil {
		// Not a typed nil in a non-nil interface: callers test for nil
		// to know what to stop.
		return nil, err
	}
	return c, nil
}

// Host is what the broker offers a protocol server. Every method is safe for
// concurrent use. Per-item outcomes are reported with ErrorCodes inside the
// results; a returned error means the whole call failed (the server answers
// every item with ErrUnknownServerError or closes the connection).
type Host interface {
	// Cluster describes the cluster: id, controller, live brokers.
	Cluster(ctx context.Context) Cluster
	// Metadata describes the named topics (all when names is nil), creating
	// missing ones when autoCreate is set and the broker allows it.
	Metadata(ctx context.Context, names []string, autoCreate bool) ([]TopicMetadata, error)
	// Produce appends one record batch (Kafka v2 format, as the client sent
	// it) to a partition. With Acks 0, 1 or -1 it returns after the batch is
	// committed by the partition's Raft group (Acks 0: the server sends no
	// response). The batch may be modified in place.
	Produce(ctx context.Context, req ProduceRequest) ProduceResult
	// Fetch reads from many partitions, waiting up to MaxWait for MinBytes.
	Fetch(ctx context.Context, req FetchRequest) []FetchResult
	// ListOffsets answers one partition's earliest (-2), latest (-1) or
	// by-timestamp offset.
	ListOffsets(ctx context.Context, req ListOffsetsRequest) ListOffsetsResult
	CreateTopics(ctx context.Context, req []CreateTopic, validateOnly bool) []TopicResult
	DeleteTopics(ctx context.Context, names []string) []TopicResult
	CreatePartitions(ctx context.Context, req []CreatePartitions, validateOnly bool) []TopicResult
	DescribeConfigs(ctx context.Context, req []ConfigResource) []ConfigResult
	// InitProducerID allocates a producer id (epoch 0) for an idempotent
	// producer. Transactional ids are not supported yet.
	InitProducerID(ctx context.Context, req InitProducerIDRequest) InitProducerIDResult
}

// Broker is one broker as clients see it.
type Broker struct {
	ID   int32
	Host string
	Port int32
	Rack string
}

// Cluster describes the cluster.
type Cluster struct {
	ID         string
	Controller int32 // the broker leading the metadata group, -1 if none
	Brokers    []Broker
}

// TopicMetadata describes a topic.
type TopicMetadata struct {
	Err        ErrorCode
	Name       string
	ID         [16]byte
	Internal   bool
	Partitions []PartitionMetadata
}

// PartitionMetadata describes one partition.
type PartitionMetadata struct {
	Err         ErrorCode
	Partition   int32
	Leader      int32 // -1 if none
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

// ProduceRequest is one partition's part of a Produce request.
type ProduceRequest struct {
	Topic     string
	Partition int32
	Acks      int16
	Timeout   time.Duration
	Records   []byte // one or more v2 record batches
}

// ProduceResult is the outcome for one partition.
type ProduceResult struct {
	Err            ErrorCode
	ErrMsg         string
	BaseOffset     int64
	LogAppendTime  int64 // -1: CreateTime
	LogStartOffset int64
}

// FetchRequest reads from many partitions.
type FetchRequest struct {
	MaxWait    time.Duration
	MinBytes   int32
	MaxBytes   int32
	Partitions []FetchPartition
}

// FetchPartition is one partition to read.
type FetchPartition struct {
	Topic       string
	Partition   int32
	Offset      int64
	MaxBytes    int32
	LeaderEpoch int32 // -1 if the client did not say
}

// FetchResult answers one FetchPartition, in request order.
type FetchResult struct {
	Topic            string
	Partition        int32
	Err              ErrorCode
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	Records          []byte // whole v2 batches, base offsets filled in
}

// ListOffsetsRequest asks for one partition's offset at Timestamp
// (-1 latest, -2 earliest, -3 max timestamp, else the first offset whose
// timestamp is at or after it).
type ListOffsetsRequest struct {
	Topic     string
	Partition int32
	Timestamp int64
}

// ListOffsetsResult answers a ListOffsetsRequest.
type ListOffsetsResult struct {
	Err         ErrorCode
	Timestamp   int64
	Offset      int64
	LeaderEpoch int32
}

// CreateTopic asks for a topic. NumPartitions or ReplicationFactor -1 means
// the broker default.
type CreateTopic struct {
	Name              string
	NumPartitions     int32
	ReplicationFactor int16
	Assignment        map[int32][]int32 // explicit replicas per partition (optional)
	Configs           map[string]string
}

// TopicResult is the outcome for one topic of an admin call.
type TopicResult struct {
	Name              string
	ID                [16]byte
	Err               ErrorCode
	ErrMsg            string
	NumPartitions     int32
	ReplicationFactor int16
	Configs           []ConfigEntry // CreateTopics v5+: the topic's configs
}

// CreatePartitions raises a topic's partition count to Count.
type CreatePartitions struct {
	Topic      string
	Count      int32
	Assignment [][]int32 // replicas of each new partition (optional)
}

// ConfigResource names a topic (Type 2) or broker (Type 4) to describe.
type ConfigResource struct {
	Type int8
	Name string
	Keys []string // nil: all
}

// ConfigResult describes one resource.
type ConfigResult struct {
	Type    int8
	Name    string
	Err     ErrorCode
	ErrMsg  string
	Configs []ConfigEntry
}

// Config sources (DescribeConfigs v1+).
const (
	ConfigSourceUnknown              int8 = 0
	ConfigSourceDynamicTopic         int8 = 1
	ConfigSourceDynamicBroker        int8 = 2
	ConfigSourceDynamicDefaultBroker int8 = 3
	ConfigSourceStaticBroker         int8 = 4
	ConfigSourceDefault              int8 = 5
)

// ConfigEntry is one config key.
type ConfigEntry struct {
	Name      string
	Value     *string
	ReadOnly  bool
	Default   bool
	Sensitive bool
	Source    int8
}

// InitProducerIDRequest asks for a producer id.
type InitProducerIDRequest struct {
	TransactionalID *string
	ProducerID      int64 // -1 for a new producer
	ProducerEpoch   int16
}

// InitProducerIDResult answers it.
type InitProducerIDResult struct {
	Err           ErrorCode
	ProducerID    int64
	ProducerEpoch int16
}
