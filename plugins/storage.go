// Package plugins runs Chronik components as hashicorp/go-plugin
// subprocesses over gRPC: the host side of the plugin protocol. A plugin is
// written with package sdk; the broker opens a storage plugin with
// OpenStorage, and gets a storage.Store it cannot tell from an in-process
// one except by speed. See docs/PLUGINS.md.
package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/internal/remote"
	"github.com/chronik-go/chronik/plugins/internal/storagepb"
	"github.com/chronik-go/chronik/plugins/sdk"
)

// StorageOptions say which storage plugin to run and how.
type StorageOptions struct {
	// Type is the store type the plugin must serve (wal, pebble, ...).
	Type component.Type
	// Command starts the plugin process.
	Command Command
	// InProcess, if set, is served in this process instead, on a Unix
	// socket, and reached through the same protocol and client: the test
	// suites' gRPC shim mode. (go-plugin's own in-process test mode leaks
	// its stdio goroutines, and its TestPluginGRPCConn keeps gRPC's 4 MiB
	// message limit.)
	InProcess storage.Factory
	// Config is the component's config section (its keys other than type
	// and plugin), decoded by the plugin over its defaults.
	Config map[string]any
	// DataDir is the store's directory.
	DataDir string
	// Logger receives the plugin's log and go-plugin's.
	Logger *slog.Logger
	// Unary sends each Write and Entries as a unary call instead of over
	// the streams (kept to measure the difference).
	Unary bool
	// FailLinger is how long a call that fails because the plugin is gone
	// is held before it returns its error (see Store.Done): 0 means
	// DefaultFailLinger, negative not at all.
	FailLinger time.Duration
	// TailCache is how many bytes of the groups' newest entries the host
	// keeps to answer reads of the tail without crossing the process
	// boundary (at most 1 MiB a group): 0 means DefaultTailCache, negative
	// none.
	TailCache int64

	_ struct{}
}

func (o *StorageOptions) name() string { return fmt.Sprintf("storage plugin %s", o.Type) }

// connect starts or reattaches to the plugin and returns its raw client.
func connect(ctx context.Context, o *StorageOptions) (*process, storagepb.StoreClient, error) {
	if o.InProcess != nil {
		return serveInProcess(o)
	}
	ps := plugin.PluginSet{sdk.StoragePluginName: &sdk.StoragePlugin{}}
	p, raw, err := start(ctx, o.name(), o.Command, sdk.StorageHandshake, ps, o.Logger)
	if err != nil {
		return nil, nil, err
	}
	return p, raw.(storagepb.StoreClient), nil
}

func configRequest(o *StorageOptions) (*storagepb.ConfigRequest, error) {
	var b []byte
	if len(o.Config) > 0 {
		var err error
		if b, err = json.Marshal(jsonSafe(o.Config)); err != nil {
			return nil, fmt.Errorf("%s: config section: %w", o.name(), err)
		}
	}
	return &storagepb.ConfigRequest{Type: string(o.Type), ConfigJson: b, DataDir: o.DataDir}, nil
}

// Defaults of StorageOptions.
const (
	DefaultTailCache  = 64 << 20
	DefaultFailLinger = 10 * time.Second
)

// Store is a storage.Store served by a plugin.
type Store = remote.Store

// OpenStorage starts the storage plugin, opens its store with the config
// section, and loads every group's index.
func OpenStorage(ctx context.Context, o StorageOptions) (_ *Store, err error) {
	req, err := configRequest(&o)
	if err != nil {
		return nil, err
	}
	p, rpc, err := connect(ctx, &o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	ro := remote.Options{Name: o.name(), Unary: o.Unary, TailCache: o.TailCache, FailLinger: o.FailLinger}
	if ro.TailCache == 0 {
		ro.TailCache = DefaultTailCache
	} else if ro.TailCache < 0 {
		ro.TailCache = 0
	}
	switch {
	case ro.FailLinger == 0:
		ro.FailLinger = DefaultFailLinger
	case ro.FailLinger < 0:
		ro.FailLinger = 0
	}
	resp, err := rpc.Open(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: open: %w", o.name(), err)
	}
	if err := resp.GetStatus().Err(); err != nil {
		if storage.CodeOf(err) == storage.CodeInvalid {
			return nil, &ConfigError{Plugin: o.name(), Problems: strings.Split(resp.GetStatus().GetMessage(), "\n")}
		}
		return nil, fmt.Errorf("%s: %w", o.name(), err)
	}
	ro.Stats = resp.GetStats()
	return remote.Open(ctx, rpc, p, ro)
}

// ValidateStorage starts the plugin only to have it decode and validate
// the config section; the error is the plugin's own message.
func ValidateStorage(ctx context.Context, o StorageOptions) error {
	req, err := configRequest(&o)
	if err != nil {
		return err
	}
	p, rpc, err := connect(ctx, &o)
	if err != nil {
		return err
	}
	defer p.Stop()
	st, err := rpc.Validate(ctx, req)
	if err != nil {
		return fmt.Errorf("%s: validate: %w", o.name(), err)
	}
	if err := st.Err(); err != nil {
		if storage.CodeOf(err) == storage.CodeInvalid {
			return &ConfigError{Plugin: o.name(), Problems: strings.Split(st.GetMessage(), "\n")}
		}
		return err
	}
	return nil
}

// ConfigError is a config section the plugin refused: its problems, one a
// line, in the plugin's own words.
type ConfigError struct {
	Plugin   string
	Problems []string
}

func (e *ConfigError) Error() string {
	return e.Plugin + ": invalid config: " + strings.Join(e.Problems, "; ")
}

// serveInProcess serves o.InProcess on a Unix socket in a private
// directory and connects to it.
func serveInProcess(o *StorageOptions) (*process, storagepb.StoreClient, error) {
	dir, err := os.MkdirTemp("", "chronik-shim-")
	if err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(dir, "plugin.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	srv := grpc.NewServer(sdk.GRPCServerOptions()...)
	storagepb.RegisterStoreServer(srv, remote.NewServer(o.InProcess, o.Logger))
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+sock, append(sdk.GRPCDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	stop := func() {
		if conn != nil {
			conn.Close()
		}
		srv.Stop()
		<-served
		os.RemoveAll(dir)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return &process{shutdown: stop}, storagepb.NewStoreClient(conn), nil
}

// jsonSafe copies a config section for JSON: durations become strings
// such as "10ms", which the plugin decodes as a broker does.
func jsonSafe(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = jsonSafe(e)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = jsonSafe(e)
		}
		return l
	case time.Duration:
		return v.String()
	}
	return v
}
