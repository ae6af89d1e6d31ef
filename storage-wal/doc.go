// Package wal is a storage.Store on disk: a segmented, checksummed write-ahead log.
package wal
