// Package components is the one list of the component factories built into
// chronik. The chronik binary and the integration tests both use it.
package components

import (
	"fmt"
	"os"

	etcd "github.com/chronik-go/chronik/consensus-etcd"
	hashicorp "github.com/chronik-go/chronik/consensus-hashicorp"
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins"
	"github.com/chronik-go/chronik/plugins/sdk"
	kafka "github.com/chronik-go/chronik/protocol-kafka"
	memory "github.com/chronik-go/chronik/storage-memory"
	wal "github.com/chronik-go/chronik/storage-wal"
)

// Factories returns every built-in component factory: the one list of
// what is compiled into chronik. To add a component, import its module
// (with a replace line in go.mod) and add its NewFactory() to the list of
// its kind; docs/CONFIGURATION.md then needs regenerating (go generate).
// Two factories of one kind with the same type name are an error.
func Factories() (config.Factories, error) {
	var (
		f   config.Factories
		err error
	)
	f.Storage, err = component.MakeMap[storage.Factory](
		memory.NewFactory(),
		wal.NewFactory(),
	)
	if err != nil {
		return f, fmt.Errorf("storage factories: %w", err)
	}
	f.Consensus, err = component.MakeMap[consensus.Factory](
		etcd.NewFactory(),
		hashicorp.NewFactory(),
	)
	if err != nil {
		return f, fmt.Errorf("consensus factories: %w", err)
	}
	f.Protocol, err = component.MakeMap[protocol.Factory](
		kafka.NewFactory(),
	)
	if err != nil {
		return f, fmt.Errorf("protocol factories: %w", err)
	}
	f.Plugins = &plugins.Host{Builtin: selfPlugin(f)}
	return f, nil
}

// ServeStorage serves f's built-in store of type t as a plugin, until the
// broker stops it: what `chronik plugin serve storage <type>` runs, and a
// test binary standing in for chronik.
func ServeStorage(f config.Factories, t component.Type) error {
	sf, err := component.Lookup("storage", f.Storage, t)
	if err != nil {
		return err
	}
	sdk.ServeStorage(sf)
	return nil
}

// ServeConsensus serves f's built-in engine of type t as a plugin, until
// the broker stops it: `chronik plugin serve consensus <type>`.
func ServeConsensus(f config.Factories, t component.Type) error {
	cf, err := component.Lookup("consensus", f.Consensus, t)
	if err != nil {
		return err
	}
	sdk.ServeConsensus(cf)
	return nil
}

// selfPlugin runs built-in components as plugins by re-executing this
// binary: `chronik plugin serve storage wal`, `chronik plugin serve
// consensus etcd`.
func selfPlugin(f config.Factories) func(kind string, t component.Type) (plugins.Command, bool) {
	return func(kind string, t component.Type) (plugins.Command, bool) {
		builtin := false
		switch kind {
		case "storage":
			_, builtin = f.Storage[t]
		case "consensus":
			_, builtin = f.Consensus[t]
		}
		if !builtin {
			return plugins.Command{}, false
		}
		exe, err := os.Executable()
		if err != nil {
			return plugins.Command{}, false
		}
		return plugins.Command{Path: exe, Args: []string{"plugin", "serve", kind, string(t)}}, true
	}
}
