// Package storagepb holds the generated wire types of the storage plugin
// protocol, and the packed encoding of entries it carries.
//
// Generated with protoc 3.21.12, protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc v1.6.0.
package storagepb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative storage.proto
