// Package config loads and checks the configuration of a Chronik broker.
//
// Sources, later ones winning: the defaults (Default, plus the default
// config of each selected component's factory), a file (YAML or TOML),
// CHRONIK_* environment variables, then key=value overrides from the command
// line. Load does all of it: it resolves the component types first, because
// the set of valid keys depends on them, then rejects unknown keys in every
// source (a typo must not pass silently), unmarshals each component's
// section over its factory's DefaultConfig, and validates everything,
// collecting every problem into one *Error whose lines name the key at
// fault.
package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strconv"

	"github.com/chronik-go/chronik/core/broker"
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
	"github.com/chronik-go/chronik/core/telemetry"
)

// Config is the whole configuration of one broker process.
type Config struct {
	Node      Node             `koanf:"node"`
	Cluster   Cluster          `koanf:"cluster"`
	Kafka     Kafka            `koanf:"kafka"`
	Broker    broker.Config    `koanf:"broker"`
	Storage   Pluggable        `koanf:"storage"`
	Consensus Pluggable        `koanf:"consensus"`
	Protocol  Component        `koanf:"protocol"`
	Plugins   Plugins          `koanf:"plugins"`
	Telemetry telemetry.Config `koanf:"telemetry"`

	// File is the config file Load read ("" if none).
	File string `koanf:"-"`
}

// Node identifies this broker.
type Node struct {
	// ID is this broker's id, unique in the cluster and > 0.
	ID int32 `koanf:"id"`
	// DataDir is the directory this broker keeps its data in; each
	// component gets a subdirectory (storage in <data_dir>/storage).
	DataDir string `koanf:"data_dir"`
}

// Cluster describes the cluster this broker belongs to.
type Cluster struct {
	// ID names the cluster; clients see it in Metadata.
	ID string `koanf:"id"`
	// Listen is the host:port this broker accepts peer (Raft) traffic on.
	Listen string `koanf:"listen"`
	// Peers are the other brokers of the initial cluster: their ids, peer
	// addresses and Kafka addresses; every broker of an initial cluster lists
	// all the others. Empty means a single-broker cluster. In the environment
	// or on the command line: a comma-separated list of
	// id=addr/kafka (2=10.0.0.2:9093/10.0.0.2:9092).
	Peers []Peer `koanf:"peers"`
}

// Peer is another broker of the initial cluster.
type Peer struct {
	// ID is the peer's node.id.
	ID int32 `koanf:"id"`
	// Addr is the peer's cluster.listen address.
	Addr string `koanf:"addr"`
	// Kafka is the peer's kafka.advertised address, where clients are sent
	// for the partitions it leads.
	Kafka string `koanf:"kafka"`
}

// Kafka holds what the broker tells Kafka clients about itself.
type Kafka struct {
	// Advertised is the host:port clients are told to connect to. Empty
	// means the protocol's listen address (protocol.listen) when that names
	// a fixed port; set it when listening on a wildcard address.
	Advertised string `koanf:"advertised"`
}

// PluginMode says where a component runs.
type PluginMode string

// Plugin modes.
const (
	// InProcess runs the component inside the broker process.
	InProcess PluginMode = "inprocess"
	// Subprocess runs the component as a go-plugin subprocess.
	Subprocess PluginMode = "subprocess"
)

// Plugin says how a component is run.
type Plugin struct {
	// Mode says where the component runs: inprocess, or subprocess (a
	// hashicorp/go-plugin process the broker starts and talks gRPC to;
	// storage only so far).
	Mode PluginMode `koanf:"mode"`
	// Path is the plugin executable, for mode subprocess. Empty means the
	// built-in component of this type, run by chronik re-executing itself,
	// or, for a type chronik does not have, the executable
	// chronik-<section>-<type> in plugins.dir.
	Path string `koanf:"path"`
	// SHA256 is the executable's expected SHA-256, in hex; when set it is
	// checked before the plugin is started.
	SHA256 string `koanf:"sha256"`
	// AutoMTLS has go-plugin authenticate the broker and the plugin to each
	// other with one-time TLS certificates. Without it the plugin's socket
	// lies in a directory only this user can reach (mode 0700), which costs
	// nothing.
	AutoMTLS bool `koanf:"auto_mtls"`
}

// Plugins says where external plugins are found.
type Plugins struct {
	// Dir is where plugin executables named chronik-<kind>-<type> (such as
	// chronik-storage-pebble) are looked for.
	Dir string `koanf:"dir"`
}

// Component is a section that selects a factory by type; the section's
// other keys are the factory's own config.
type Component struct {
	// Type names the factory that builds the component.
	Type component.Type `koanf:"type"`
	// Config is the factory's config: its DefaultConfig overlaid with the
	// section's other keys. Load sets it.
	Config component.Config `koanf:"-" config:"inline"`
}

// Pluggable is a Component that may also run as a plugin subprocess.
type Pluggable struct {
	// Type names the factory that builds the component.
	Type component.Type `koanf:"type"`
	// Plugin says whether the component runs in process or as a plugin.
	Plugin Plugin `koanf:"plugin"`
	// Config is the factory's config: its DefaultConfig overlaid with the
	// section's other keys. Load sets it; it is nil for a type chronik does
	// not have, run as a plugin, whose keys only the plugin knows.
	Config component.Config `koanf:"-" config:"inline"`
	// Raw is the section's keys other than type and plugin, as a nested
	// map (with the defaults of a built-in type): what a plugin subprocess
	// receives and decodes over its own defaults. Load sets it.
	Raw map[string]any `koanf:"-"`
}

// Default returns the built-in defaults, without component configs (those
// come from the factories).
func Default() Config {
	return Config{
		Node:      Node{ID: 1, DataDir: "./data"},
		Cluster:   Cluster{ID: "chronik", Listen: "127.0.0.1:9093", Peers: []Peer{}},
		Broker:    broker.DefaultConfig(),
		Storage:   Pluggable{Type: "wal", Plugin: Plugin{Mode: InProcess}},
		Consensus: Pluggable{Type: "etcd", Plugin: Plugin{Mode: InProcess}},
		Protocol:  Component{Type: "kafka"},
		Plugins:   Plugins{Dir: ""},
		Telemetry: telemetry.DefaultConfig(),
	}
}

// Error is a configuration that cannot be used: every problem found, each
// naming the key (or source) at fault.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	s := "invalid configuration:"
	for _, p := range e.Problems {
		s += "\n  - " + p.Error()
	}
	return s
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error { return e.Problems }

// problems collects errors, flattening joined ones into separate lines.
type problems []error

func (p *problems) add(err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			p.add(e)
		}
		return
	}
	*p = append(*p, err)
}

func (p *problems) addf(format string, args ...any) { p.add(fmt.Errorf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Problems: p}
}

// Validate checks the config, including each component's own config when
// set. The error, if any, is an *Error.
func (c *Config) Validate() error {
	var p problems
	if c.Node.ID <= 0 {
		p.addf("node.id must be > 0, got %d", c.Node.ID)
	}
	if c.Node.DataDir == "" {
		p.addf("node.data_dir must not be empty")
	}
	if c.Cluster.ID == "" {
		p.addf("cluster.id must not be empty")
	}
	checkAddr(&p, "cluster.listen", c.Cluster.Listen)
	seen := map[int32]bool{}
	for i, peer := range c.Cluster.Peers {
		key := fmt.Sprintf("cluster.peers[%d]", i)
		switch {
		case peer.ID <= 0:
			p.addf("%s.id must be > 0, got %d", key, peer.ID)
		case peer.ID == c.Node.ID:
			p.addf("%s.id %d is this broker's own node.id (list only the other brokers)", key, peer.ID)
		case seen[peer.ID]:
			p.addf("%s.id %d is listed twice", key, peer.ID)
		}
		seen[peer.ID] = true
		checkAddr(&p, key+".addr", peer.Addr)
		checkAddr(&p, key+".kafka", peer.Kafka)
	}
	if c.Kafka.Advertised != "" {
		checkAddr(&p, "kafka.advertised", c.Kafka.Advertised)
	} else if len(c.Cluster.Peers) > 0 {
		p.addf("kafka.advertised must be set in a cluster of several brokers (the protocol listens on a wildcard address or port 0)")
	}
	bc := c.BrokerConfig()
	p.add(bc.Validate())
	p.add(c.Telemetry.Validate())
	validatePlugin(&p, "storage", c.Storage.Plugin, true)
	validatePlugin(&p, "consensus", c.Consensus.Plugin, true)
	for _, s := range []struct {
		name string
		typ  component.Type
		cfg  component.Config
	}{
		{"storage", c.Storage.Type, c.Storage.Config},
		{"consensus", c.Consensus.Type, c.Consensus.Config},
		{"protocol", c.Protocol.Type, c.Protocol.Config},
	} {
		if err := s.typ.Validate(); err != nil {
			p.addf("%s.type: %w", s.name, err)
		}
		if s.cfg != nil {
			if err := component.Validate(s.cfg); err != nil {
				p.addf("%s (type %s): %w", s.name, s.typ, err)
			}
		}
	}
	return p.err()
}

func checkAddr(p *problems, key, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.addf("%s %q: want host:port: %w", key, addr, err)
	}
}

func validatePlugin(p *problems, section string, pl Plugin, subprocess bool) {
	switch pl.Mode {
	case InProcess, "":
		for key, set := range map[string]bool{"path": pl.Path != "", "sha256": pl.SHA256 != ""} {
			if set {
				p.addf("%s.plugin.%s is set but %s.plugin.mode is %s; it is only used with mode subprocess", section, key, section, InProcess)
			}
		}
	case Subprocess:
		if !subprocess {
			p.addf("%s.plugin.mode: subprocess is not implemented yet for %s; use inprocess (the default)", section, section)
		}
		if pl.SHA256 != "" && !sha256RE.MatchString(pl.SHA256) {
			p.addf("%s.plugin.sha256 %q: want 64 hex digits", section, pl.SHA256)
		}
	default:
		p.addf("%s.plugin.mode %q: want inprocess or subprocess", section, pl.Mode)
	}
}

var sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// BrokerConfig returns the broker section with the identity fields the
// broker needs filled in from the node, cluster and kafka sections: NodeID,
// ClusterID, Advertised and Brokers (this broker and every peer, by id, with
// their Kafka addresses). When kafka.advertised is empty (a single broker
// listening on a wildcard address or port 0) this broker's Host and Port are
// left empty for the caller to fill in from the protocol server's address.
func (c *Config) BrokerConfig() broker.Config {
	bc := c.Broker
	bc.NodeID = c.Node.ID
	bc.ClusterID = c.Cluster.ID
	bc.Advertised = c.Kafka.Advertised
	bc.Brokers = []protocol.Broker{brokerAt(c.Node.ID, c.Kafka.Advertised)}
	for _, p := range c.Cluster.Peers {
		bc.Brokers = append(bc.Brokers, brokerAt(p.ID, p.Kafka))
	}
	sort.Slice(bc.Brokers, func(i, j int) bool { return bc.Brokers[i].ID < bc.Brokers[j].ID })
	return bc
}

func brokerAt(id int32, addr string) protocol.Broker {
	b := protocol.Broker{ID: id}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err == nil {
			b.Host, b.Port = host, int32(n)
		}
	}
	return b
}

// PeerAddrs returns the peers as consensus.Params wants them.
func (c *Config) PeerAddrs() map[consensus.NodeID]string {
	m := make(map[consensus.NodeID]string, len(c.Cluster.Peers))
	for _, p := range c.Cluster.Peers {
		m[consensus.NodeID(p.ID)] = p.Addr
	}
	return m
}

var errNotPointer = errors.New("DefaultConfig must return a pointer to a struct")
