module github.com/chronik-go/chronik/cmd

go 1.26.8

replace (
	github.com/chronik-go/chronik/consensus-etcd => ../consensus-etcd
	github.com/chronik-go/chronik/consensus-hashicorp => ../consensus-hashicorp
	github.com/chronik-go/chronik/core => ../core
	github.com/chronik-go/chronik/plugins => ../plugins
	github.com/chronik-go/chronik/protocol-kafka => ../protocol-kafka
	github.com/chronik-go/chronik/storage-memory => ../storage-memory
	github.com/chronik-go/chronik/storage-wal => ../storage-wal
)
