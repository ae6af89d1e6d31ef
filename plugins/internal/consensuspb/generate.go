// Package consensuspb holds the generated wire types of the consensus
// plugin protocol.
//
// Generated with protoc 3.21.12, protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc v1.6.0.
package consensuspb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative consensus.proto
