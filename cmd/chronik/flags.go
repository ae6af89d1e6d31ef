package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/core/config"
)

// namedFlags are shorthands for common --set keys. They are applied before
// the --set values, so a --set of the same key wins.
var namedFlags = []struct {
	name, key, usage string
}{
	{"node-id", "node.id", "this broker's id"},
	{"data-dir", "node.data_dir", "the data directory"},
	{"cluster-listen", "cluster.listen", "host:port for peer (Raft) traffic"},
	{"kafka-listen", "protocol.listen", "host:port the Kafka protocol listens on"},
	{"peers", "cluster.peers", "the other brokers of the initial cluster: id=addr/kafka,..."},
}

// loadFlags are the flags that say where the configuration comes from.
type loadFlags struct {
	file  string
	set   []string
	named []string // values of namedFlags, by index
}

func (l *loadFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&l.file, "config", "c", "", "config file (.yaml, .yml or .toml; default: "+config.DefaultFile+" in the working directory, if present)")
	fs.StringArrayVar(&l.set, "set", nil, "set a config key: --set key=value (repeatable; wins over file and environment)")
	l.named = make([]string, len(namedFlags))
	for i, nf := range namedFlags {
		fs.StringVar(&l.named[i], nf.name, "", nf.usage+" (sets "+nf.key+")")
	}
}

// load reads the configuration from the defaults, the file, the
// environment and the flags, and validates it.
func (l *loadFlags) load(cmd *cobra.Command, c cli) (*config.Config, config.Factories, error) {
	f, err := c.factories()
	if err != nil {
		return nil, f, err
	}
	var set []string
	for i, nf := range namedFlags {
		if cmd.Flags().Changed(nf.name) {
			set = append(set, nf.key+"="+strings.TrimSpace(l.named[i]))
		}
	}
	set = append(set, l.set...)
	cfg, err := config.Load(f, config.Sources{File: l.file, Dir: c.dir, Env: c.env, Set: set})
	return cfg, f, err
}
