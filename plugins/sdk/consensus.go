package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/plugins/internal/consensuspb"
	"github.com/chronik-go/chronik/plugins/internal/remote"
)

// ConsensusProtocolVersion is bumped on any incompatible change of the
// consensus protocol.
const (
	ConsensusProtocolVersion = 1
	// ConsensusPluginName is the name the consensus service is dispensed by.
	ConsensusPluginName = "consensus"
)

// ConsensusHandshake is go-plugin's handshake for consensus plugins.
var ConsensusHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  ConsensusProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// ConsensusPlugin is the go-plugin Plugin of the consensus service. The
// plugin side sets Factory; the host side dispenses a *ConsensusConn.
type ConsensusPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Factory consensus.Factory
	Logger  *slog.Logger
	// OnHostLost is called when the connection back to the broker breaks
	// while the engine runs (ServeConsensus: exit at once).
	OnHostLost func(error)

	srv atomic.Pointer[remote.EngineServer]
}

// ConsensusConn is the host's end of a consensus plugin: the connection
// to its Engine service, and go-plugin's broker, over which the host
// serves the plugin its state machines and store.
type ConsensusConn struct {
	Conn   *grpc.ClientConn
	Broker *plugin.GRPCBroker
}

// GRPCServer registers the consensus service.
func (p *ConsensusPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	srv := remote.NewEngineServer(p.Factory, p.Logger, func(id uint32) (*grpc.ClientConn, error) {
		return b.DialWithOptions(id, GRPCDialOptions()...)
	})
	srv.OnHostLost = p.OnHostLost
	p.srv.Store(srv)
	consensuspb.RegisterEngineServer(s, srv)
	return nil
}

// GRPCClient returns the host's end of the plugin.
func (p *ConsensusPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &ConsensusConn{Conn: c, Broker: b}, nil
}

// ServeConsensus serves f as a consensus plugin until the broker stops it
// or dies. Call it from the plugin's main. The engine sends and receives
// its peer traffic itself; it reaches the broker's state machines and
// store through the broker.
func ServeConsensus(f consensus.Factory) {
	signal.Ignore(syscall.SIGPIPE)
	stderr := os.Stderr
	log := NewLogger(stderr)
	if err := f.Type().Validate(); err != nil {
		fmt.Fprintf(stderr, "chronik consensus plugin: %v\n", err)
		os.Exit(1)
	}
	// A broker that is gone (killed) takes its engine with it at once, as
	// it would an engine in its process: an engine left running would
	// keep heartbeating as leader, holding off the election its peers
	// need, while it can persist nothing. Nothing of the broker's is lost:
	// the store is the broker's, and what it synced is on disk.
	p := &ConsensusPlugin{Factory: f, Logger: log, OnHostLost: func(err error) {
		log.Error("the connection to the broker broke; exiting", "err", err)
		os.Exit(3)
	}}
	go watchParentOf(log, "exiting", func() {
		// As above: no orderly stop of an engine whose broker is gone.
	})
	defer profile(log)()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: ConsensusHandshake,
		Plugins:         plugin.PluginSet{ConsensusPluginName: p},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, GRPCServerOptions()...)...)
		},
	})
}
