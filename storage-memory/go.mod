module github.com/chronik-go/chronik/storage-memory

go 1.26.8

replace github.com/chronik-go/chronik/core => ../core
