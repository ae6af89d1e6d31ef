// Package sdk is what a storage plugin imports: a plugin binary is a main
// that hands its storage.Factory to ServeStorage.
//
//	package main
//
//	import (
//		"github.com/chronik-go/chronik/plugins/sdk"
//		pebblestore "github.com/chronik-go/chronik/plugins/examples/storage-pebble"
//	)
//
//	func main() { sdk.ServeStorage(pebblestore.NewFactory()) }
//
// The broker starts the binary with go-plugin's handshake and talks gRPC
// to it over a Unix socket in a private directory. The SDK decodes the
// config section the broker passes (the keys under storage: other than
// type and plugin) over the factory's DefaultConfig and validates it, so a
// bad key or value fails the broker's start, and `chronik config check`,
// with the plugin's own message.
//
// A plugin must never write to stdout, which carries the handshake. The
// SDK gives the store a logger that writes to stderr, which the broker
// reads into its own log under the component's name. The plugin exits by
// itself, after closing its store, when the broker process dies.
package sdk

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/internal/consensuspb"
	"github.com/chronik-go/chronik/plugins/internal/remote"
	"github.com/chronik-go/chronik/plugins/internal/storagepb"
)

// The handshake. A broker and a plugin agree only if the cookie matches
// and they speak the same protocol version; StorageProtocolVersion is
// bumped on any incompatible change of the storage protocol.
const (
	MagicCookieKey         = "CHRONIK_PLUGIN"
	MagicCookieValue       = "7c1f9e2a4b6d8f03-chronik-component-plugin"
	StorageProtocolVersion = 1
	// StoragePluginName is the name the storage service is dispensed by.
	StoragePluginName = "storage"
)

// StorageHandshake is go-plugin's handshake for storage plugins.
var StorageHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  StorageProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// MaxMessageSize is the largest gRPC message either side accepts: a Write
// can carry far more than gRPC's default 4 MiB.
const MaxMessageSize = 1<<31 - 1

// bufferPool replaces gRPC's default buffer pool, whose tiers jump from 32
// KiB to 1 MiB: every message in between took (and zeroed) a 1 MiB buffer,
// a fifth of the CPU of 64 KiB reads through the plugin.
var bufferPool = sync.OnceValue(func() mem.BufferPool {
	p, err := mem.NewBinaryTieredBufferPool(8, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22)
	if err != nil {
		panic(err) // the exponents are constants
	}
	return p
})

// GRPCServerOptions raise the plugin-side server's message limits, which
// go-plugin leaves at gRPC's defaults, and set the storage protocol's codec
// (consensuspb.Codec: protobuf on the wire, fewer copies of entries and
// proposals).
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(consensuspb.Codec{}),
		experimental.BufferPool(bufferPool()),
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.ReadBufferSize(256 << 10),
		grpc.WriteBufferSize(256 << 10),
		grpc.InitialWindowSize(16 << 20),
		grpc.InitialConnWindowSize(64 << 20),
	}
}

// GRPCDialOptions are the host side's matching options.
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		experimental.WithBufferPool(bufferPool()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(consensuspb.Codec{}), grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
		grpc.WithReadBufferSize(256 << 10),
		grpc.WithWriteBufferSize(256 << 10),
		grpc.WithInitialWindowSize(16 << 20),
		grpc.WithInitialConnWindowSize(64 << 20),
	}
}

// StoragePlugin is the go-plugin Plugin of the storage service. The plugin
// side sets Factory; the host side uses it with no fields set, and
// dispenses a storagepb.StoreClient (the plugins package wraps it).
type StoragePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Factory storage.Factory
	Logger  *slog.Logger

	srv atomic.Pointer[remote.Server]
}

// GRPCServer registers the storage service.
func (p *StoragePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := remote.NewServer(p.Factory, p.Logger)
	p.srv.Store(srv)
	storagepb.RegisterStoreServer(s, srv)
	return nil
}

// GRPCClient returns the raw client of the storage service.
func (p *StoragePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return storagepb.NewStoreClient(c), nil
}

// ServeStorage serves f as a storage plugin until the broker closes it or
// dies. Call it from the plugin's main; it returns when the broker has
// stopped the plugin, and main should then return.
func ServeStorage(f storage.Factory) {
	// Once the broker is gone, writes to its pipes (our stderr) fail with
	// EPIPE instead of killing the plugin before it closes its store.
	signal.Ignore(syscall.SIGPIPE)
	stderr := os.Stderr // go-plugin redirects os.Stderr once serving
	log := NewLogger(stderr)
	if err := f.Type().Validate(); err != nil {
		fmt.Fprintf(stderr, "chronik storage plugin: %v\n", err)
		os.Exit(1)
	}
	p := &StoragePlugin{Factory: f, Logger: log}
	go watchParent(log, p)
	defer profile(log)()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: StorageHandshake,
		Plugins:         plugin.PluginSet{StoragePluginName: p},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, GRPCServerOptions()...)...)
		},
	})
}

// ProfileEnv names a file the plugin writes a CPU profile of its whole life
// to (with its pid added), for measuring a plugin's side of a benchmark.
const ProfileEnv = "CHRONIK_PLUGIN_CPUPROFILE"

// profile starts a CPU profile if $CHRONIK_PLUGIN_CPUPROFILE is set and
// returns what stops it.
func profile(log *slog.Logger) func() {
	path := os.Getenv(ProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		log.Error("cpu profile", "err", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// watchParent closes the store and exits once the process that started
// this plugin is gone, so that no orphan keeps writing a data directory.
func watchParent(log *slog.Logger, p *StoragePlugin) {
	watchParentOf(log, "closing the store", func() {
		if s := p.srv.Load(); s != nil {
			s.CloseStore()
		}
	})
}

// watchParentOf runs stop (given at most 5s) and exits once the process
// that started this plugin is gone.
func watchParentOf(log *slog.Logger, what string, stop func()) {
	parent := os.Getppid()
	for range time.Tick(200 * time.Millisecond) {
		if os.Getppid() != parent {
			break
		}
	}
	log.Error("the broker process that started this plugin is gone; "+what+" and exiting", "parent_pid", parent)
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	os.Exit(3)
}

// NewLogger returns a slog logger writing JSON lines that go-plugin's host
// side parses into its log (hclog's @level and @message keys).
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.Attr{} // the host stamps its own
			case slog.LevelKey:
				return slog.String("@level", strings.ToLower(a.Value.String()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}
