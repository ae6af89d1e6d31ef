module github.com/chronik-go/chronik/storage-wal

go 1.26.8

replace github.com/chronik-go/chronik/core => ../core

require (
	github.com/chronik-go/chronik/core v0.0.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.48.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
)
