// Package memory is a storage.Store held in memory.
package memory
