package plugintest

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/consensus/consensustest"
	"github.com/chronik-go/chronik/plugins"
	"github.com/chronik-go/chronik/plugins/sdk"
)

// ConsensusChildEnv names the engine type a re-executed test binary serves.
const ConsensusChildEnv = "CHRONIK_PLUGINTEST_SERVE_CONSENSUS"

// ServeConsensusIfChild serves the factory named by
// $CHRONIK_PLUGINTEST_SERVE_CONSENSUS as a consensus plugin, and never
// returns, when this test binary was started as a plugin; otherwise it
// returns at once. Call it first in TestMain.
func ServeConsensusIfChild(factories ...consensus.Factory) {
	t := os.Getenv(ConsensusChildEnv)
	if t == "" {
		return
	}
	for _, f := range factories {
		if string(f.Type()) == t {
			sdk.ServeConsensus(f)
			os.Exit(0)
		}
	}
	os.Stderr.WriteString("plugintest: no consensus factory of type " + t + "\n")
	os.Exit(2)
}

// RunConsensusModes runs the consensus conformance suite on b's engine in
// the shim and subprocess modes: each engine of the suite's clusters is
// served by a plugin (in this process over a socket, or this test binary
// re-executed, see ServeConsensusIfChild), reaching its store through the
// host. The config b.Config returns is passed as the plugin's section.
func RunConsensusModes(t *testing.T, b consensustest.Backend, stores consensustest.StoreMaker, caps consensustest.Capabilities) {
	t.Run("shim", func(t *testing.T) {
		consensustest.Run(t, ShimBackend(b), stores, caps)
	})
	t.Run("subprocess", func(t *testing.T) {
		consensustest.Run(t, SubprocessBackend(b), stores, caps)
	})
}

// ShimBackend is b's engine served in this process through the plugin
// protocol.
func ShimBackend(b consensustest.Backend) consensustest.Backend {
	return pluginBackend(b, "shim", func(o *plugins.ConsensusOptions) { o.InProcess = b.Factory })
}

// SubprocessBackend is b's engine served by this test binary re-executed.
func SubprocessBackend(b consensustest.Backend) consensustest.Backend {
	return pluginBackend(b, "subprocess", func(o *plugins.ConsensusOptions) {
		exe, _ := os.Executable()
		o.Command = plugins.Command{Path: exe, Args: []string{"-test.run=^$"}, Env: []string{ConsensusChildEnv + "=" + string(b.Factory.Type())}}
	})
}

func pluginBackend(b consensustest.Backend, mode string, set func(*plugins.ConsensusOptions)) consensustest.Backend {
	f := b.Factory
	b.Name += "/" + mode
	b.Factory = consensus.NewFactory(f.Type(), f.DefaultConfig, func(ctx context.Context, _ component.Settings, cfg component.Config, p consensus.Params) (consensus.Engine, error) {
		o := plugins.ConsensusOptions{Type: f.Type(), Config: plugins.SectionOf(cfg)}
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		set(&o)
		return plugins.StartConsensus(ctx, o, p)
	})
	return b
}
