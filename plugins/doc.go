// Package plugins will run Chronik components as hashicorp/go-plugin
// subprocesses over gRPC. Not implemented yet.
package plugins
