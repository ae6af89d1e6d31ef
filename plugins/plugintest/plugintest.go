// Package plugintest runs the storage conformance suite against a store
// served as a plugin, in the two modes besides direct use: through the
// gRPC shim in this process (go-plugin's test mode, reattached over a real
// socket) and as a real subprocess. A store's test package calls, besides
// storagetest.RunConformanceTests on the store itself:
//
//	func TestMain(m *testing.M) {
//		plugintest.ServeIfChild(mystore.NewFactory()) // the subprocess mode re-executes the test binary
//		os.Exit(m.Run())
//	}
//
//	func TestPluginModes(t *testing.T) {
//		plugintest.RunStorageModes(t, mystore.NewFactory(), cfg, caps)
//	}
package plugintest

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/storage/storagetest"
	"github.com/chronik-go/chronik/plugins"
	"github.com/chronik-go/chronik/plugins/sdk"
)

// ChildEnv names the factory type a re-executed test binary serves.
const ChildEnv = "CHRONIK_PLUGINTEST_SERVE"

// ServeIfChild serves the factory named by $CHRONIK_PLUGINTEST_SERVE as a
// storage plugin, and never returns, when this test binary was started as
// a plugin; otherwise it returns at once. Call it first in TestMain.
func ServeIfChild(factories ...storage.Factory) {
	t := os.Getenv(ChildEnv)
	if t == "" {
		return
	}
	for _, f := range factories {
		if string(f.Type()) == t {
			sdk.ServeStorage(f)
			os.Exit(0)
		}
	}
	os.Stderr.WriteString("plugintest: no factory of type " + t + "\n")
	os.Exit(2)
}

// RunStorageModes runs the conformance suite on f's store in the shim and
// subprocess modes. cfg is the config section passed to the plugin. The
// shim mode runs without the host's tail cache, so that every read crosses
// the protocol; the subprocess mode with it, as a broker runs.
func RunStorageModes(t *testing.T, f storage.Factory, cfg map[string]any, caps storagetest.Capabilities) {
	t.Run("shim", func(t *testing.T) {
		storagetest.RunConformanceTests(t, ShimMaker(f, cfg), caps)
	})
	t.Run("subprocess", func(t *testing.T) {
		storagetest.RunConformanceTests(t, SubprocessMaker(f, cfg), caps)
	})
}

// ShimMaker makes harnesses that serve f in this process and reach it
// through the plugin protocol over a socket.
func ShimMaker(f storage.Factory, cfg map[string]any) storagetest.HarnessMaker {
	return func(ctx context.Context, t testing.TB) (storagetest.Harness, error) {
		return &harness{t: t, dir: t.TempDir(), opts: plugins.StorageOptions{Type: f.Type(), Config: cfg, TailCache: -1}, shim: f}, nil
	}
}

// SubprocessMaker makes harnesses that run f in this test binary
// re-executed as a plugin (see ServeIfChild).
func SubprocessMaker(f storage.Factory, cfg map[string]any) storagetest.HarnessMaker {
	return func(ctx context.Context, t testing.TB) (storagetest.Harness, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := plugins.Command{Path: exe, Args: []string{"-test.run=^$"}, Env: []string{ChildEnv + "=" + string(f.Type())}}
		return &harness{t: t, dir: t.TempDir(), opts: plugins.StorageOptions{Type: f.Type(), Config: cfg, Command: cmd}}, nil
	}
}

type harness struct {
	t    testing.TB
	dir  string
	opts plugins.StorageOptions
	shim storage.Factory
}

func (h *harness) Open(ctx context.Context) (storage.Store, error) {
	o := h.opts
	o.DataDir = h.dir
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	o.InProcess = h.shim
	return plugins.OpenStorage(ctx, o)
}

func (h *harness) Close() {}
