module github.com/chronik-go/chronik/consensus-etcd

go 1.26.8

replace github.com/chronik-go/chronik/core => ../core

require (
	github.com/chronik-go/chronik/core v0.0.0
	github.com/chronik-go/chronik/storage-memory v0.0.0-00010101000000-000000000000
	github.com/chronik-go/chronik/storage-wal v0.0.0-00010101000000-000000000000
	go.etcd.io/raft/v3 v3.7.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/grpc v1.85.0 // indirect
)

replace github.com/chronik-go/chronik/storage-memory => ../storage-memory

replace github.com/chronik-go/chronik/storage-wal => ../storage-wal
