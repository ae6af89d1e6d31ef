package protocol

import "context"

// AdminHost is an optional capability of a Host: record deletion and topic
// config changes. A protocol server offers the matching APIs only when its
// Host implements it (checked by type assertion).
type AdminHost interface {
	// DeleteRecords moves each partition's log start offset forward
	// (through consensus, on every replica).
	DeleteRecords(ctx context.Context, req []DeleteRecordsPartition) []DeleteRecordsResult
	// AlterConfigs replaces each resource's config overrides with the
	// given set (Kafka's legacy AlterConfigs).
	AlterConfigs(ctx context.Context, req []AlterConfigsResource, validateOnly bool) []ConfigResult
	// IncrementalAlterConfigs applies each resource's operations to its
	// current overrides.
	IncrementalAlterConfigs(ctx context.Context, req []IncrementalAlterConfigsResource, validateOnly bool) []ConfigResult
}

// DeleteRecordsPartition asks to delete the records of a partition below
// Offset (-1: the high watermark).
type DeleteRecordsPartition struct {
	Topic     string
	Partition int32
	Offset    int64
}

// DeleteRecordsResult answers one partition.
type DeleteRecordsResult struct {
	Topic        string
	Partition    int32
	Err          ErrorCode
	LowWatermark int64 // the new log start offset
}

// AlterConfigsResource is a resource's new full set of overrides.
type AlterConfigsResource struct {
	Type    int8 // 2 topic, 4 broker
	Name    string
	Configs map[string]*string
}

// Incremental config operations (IncrementalAlterConfigs).
const (
	ConfigOpSet      int8 = 0
	ConfigOpDelete   int8 = 1
	ConfigOpAppend   int8 = 2
	ConfigOpSubtract int8 = 3
)

// ConfigOp is one IncrementalAlterConfigs operation.
type ConfigOp struct {
	Name  string
	Op    int8
	Value *string
}

// IncrementalAlterConfigsResource lists the operations on one resource.
type IncrementalAlterConfigsResource struct {
	Type int8
	Name string
	Ops  []ConfigOp
}
