package plugins

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/sdk"
)

// The tests here run this test binary as a plugin serving testFactory (see
// TestMain): a store type with a config of its own that the host does not
// know, as a third party's would be.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "testkv" {
		sdk.ServeStorage(testFactory())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childEnv is plugintest.ChildEnv (which this package's tests cannot import).
const childEnv = "CHRONIK_PLUGINTEST_SERVE"

type testConfig struct {
	Size int    `koanf:"size"`
	Mode string `koanf:"mode"`
}

func (c *testConfig) Validate() error {
	if c.Size < 0 {
		return fmt.Errorf("testkv: size %d is negative", c.Size)
	}
	return nil
}

// testFactory makes a store that holds nothing: enough to open, log and
// close through the plugin protocol.
func testFactory() storage.Factory {
	return storage.NewFactory("testkv", func() component.Config { return &testConfig{Size: 1, Mode: "a"} },
		func(_ context.Context, set component.Settings, cfg component.Config) (storage.Store, error) {
			set.Logger.Info("testkv open", "size", cfg.(*testConfig).Size)
			return emptyStore{}, nil
		})
}

type emptyStore struct{}

func (emptyStore) Write(context.Context, []storage.GroupWrite, bool) error { return storage.ErrInvalid }
func (emptyStore) Log(storage.GroupID) (storage.Log, error)                { return nil, storage.ErrNotFound }
func (emptyStore) Groups(context.Context) ([]storage.GroupID, error)       { return nil, nil }
func (emptyStore) Drop(context.Context, storage.GroupID) error             { return nil }
func (emptyStore) Close() error                                            { return nil }

// self is this test binary started as the testkv plugin.
func self(t *testing.T) Command {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Command{Path: exe, Args: []string{"-test.run=^$"}, Env: []string{childEnv + "=testkv"}}
}

// logSink collects log records.
type logSink struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
	return nil
}
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *logSink) WithGroup(string) slog.Handler      { return s }

func (s *logSink) find(msg string) (slog.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		if r.Message == msg {
			return r, true
		}
	}
	return slog.Record{}, false
}

func TestPluginLogsReachTheHost(t *testing.T) {
	sink := &logSink{}
	s, err := OpenStorage(context.Background(), StorageOptions{
		Type: "testkv", Command: self(t), Config: map[string]any{"size": 7}, DataDir: t.TempDir(), Logger: slog.New(sink),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, ok := sink.find("testkv open")
	if !ok {
		t.Fatalf("the plugin's log line did not reach the host's logger; got %d records", len(sink.recs))
	}
	var size any
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "size" {
			size = a.Value.Any()
		}
		return true
	})
	if fmt.Sprint(size) != "7" {
		t.Errorf("attribute size = %v, want 7 (the config section decoded by the plugin)", size)
	}
}

// TestConfigSectionCheckedByThePlugin: a bad key or value fails with the
// plugin's own message, both when validating and when opening.
func TestConfigSectionCheckedByThePlugin(t *testing.T) {
	for _, tt := range []struct {
		section map[string]any
		want    string
	}{
		{map[string]any{"sise": 3}, "sise"},
		{map[string]any{"size": -2}, "testkv: size -2 is negative"},
		{map[string]any{"size": "many"}, `storage.size: cannot parse "many" as int`},
	} {
		o := StorageOptions{Type: "testkv", Command: self(t), Config: tt.section, DataDir: t.TempDir()}
		err := ValidateStorage(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateStorage(%v) = %v, want an error containing %q", tt.section, err, tt.want)
		}
		_, err = OpenStorage(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OpenStorage(%v) = %v, want an error containing %q", tt.section, err, tt.want)
		}
	}
	if err := ValidateStorage(context.Background(), StorageOptions{Type: "testkv", Command: self(t), Config: map[string]any{"size": "5", "mode": "b"}}); err != nil {
		t.Errorf("a good section: %v", err)
	}
}

func TestWrongType(t *testing.T) {
	_, err := OpenStorage(context.Background(), StorageOptions{Type: "other", Command: self(t), DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `this plugin serves storage type "testkv", not "other"`) {
		t.Errorf("got %v", err)
	}
}

func TestProtocolVersionMismatch(t *testing.T) {
	hs := sdk.StorageHandshake
	hs.ProtocolVersion = sdk.StorageProtocolVersion + 1
	ps := plugin.PluginSet{sdk.StoragePluginName: &sdk.StoragePlugin{}}
	_, _, err := start(context.Background(), "storage plugin testkv", self(t), hs, ps, nil)
	if err == nil {
		t.Fatal("a plugin of another protocol version started")
	}
	for _, w := range []string{fmt.Sprintf("protocol version %d", hs.ProtocolVersion), fmt.Sprintf("Plugin version: %d", sdk.StorageProtocolVersion)} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	v, err := ProbeStorage(context.Background(), self(t))
	if err != nil || v != sdk.StorageProtocolVersion {
		t.Errorf("ProbeStorage = %d, %v; want %d", v, err, sdk.StorageProtocolVersion)
	}
}

func TestChecksum(t *testing.T) {
	cmd := self(t)
	f, err := os.Open(cmd.Path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd.SHA256 = hex.EncodeToString(h.Sum(nil))
	if _, err := ProbeStorage(context.Background(), cmd); err != nil {
		t.Errorf("the right checksum: %v", err)
	}
	cmd.SHA256 = strings.Repeat("0", 64)
	_, err = OpenStorage(context.Background(), StorageOptions{Type: "testkv", Command: cmd, DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "does not have the configured sha256") {
		t.Errorf("a wrong checksum: %v", err)
	}
}

// TestSocketIsPrivate: the plugin listens in a directory only this user
// can enter.
func TestSocketIsPrivate(t *testing.T) {
	s, err := OpenStorage(context.Background(), StorageOptions{Type: "testkv", Command: self(t), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", s.Pid()))
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var dir string
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := strings.CutPrefix(string(kv), plugin.EnvUnixSocketDir+"="); ok {
			dir = v
		}
	}
	if dir == "" {
		t.Fatalf("the plugin has no %s", plugin.EnvUnixSocketDir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory %s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
}

func TestHostResolve(t *testing.T) {
	h := &Host{Builtin: func(kind string, ty component.Type) (Command, bool) {
		return Command{Path: "/bin/chronik", Args: []string{"plugin", "serve", kind, string(ty)}}, ty == "wal"
	}}
	if c, err := h.Resolve("storage", "wal", config.Plugin{}, ""); err != nil || c.Path != "/bin/chronik" {
		t.Errorf("built-in: %+v, %v", c, err)
	}
	dir := t.TempDir()
	if _, err := h.Resolve("storage", "pebble", config.Plugin{}, ""); err == nil || !strings.Contains(err.Error(), "plugins.dir") {
		t.Errorf("no plugins.dir: %v", err)
	}
	if _, err := h.Resolve("storage", "pebble", config.Plugin{}, dir); err == nil || !strings.Contains(err.Error(), "chronik-storage-pebble") {
		t.Errorf("missing in plugins.dir: %v", err)
	}
	exe := dir + "/chronik-storage-pebble"
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := h.Resolve("storage", "pebble", config.Plugin{SHA256: "ab"}, dir)
	if err != nil || c.Path != exe || c.SHA256 != "ab" {
		t.Errorf("found in plugins.dir: %+v, %v", c, err)
	}
	found, err := Discover(dir)
	if err != nil || len(found) != 1 || found[0].Kind != "storage" || found[0].Type != "pebble" {
		t.Errorf("Discover = %+v, %v", found, err)
	}
}

// TestPluginDeathFailsTheStore: once the plugin process is gone, every
// call fails with CodeFailed naming the plugin, and Done is closed.
func TestPluginDeathFailsTheStore(t *testing.T) {
	s, err := OpenStorage(context.Background(), StorageOptions{Type: "testkv", Command: self(t), DataDir: t.TempDir(), FailLinger: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := os.FindProcess(s.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	start := time.Now()
	err = s.Write(context.Background(), []storage.GroupWrite{{Group: 1, Entries: []storage.Entry{{Index: 1, Term: 1}}}}, true)
	if !errors.Is(err, storage.ErrFailed) || !strings.Contains(err.Error(), "storage plugin testkv") {
		t.Errorf("Write after the plugin died = %v, want code failed naming the plugin", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("the failed Write returned after %v, before FailLinger", d)
	}
	if err := s.Err(); !errors.Is(err, storage.ErrFailed) || !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("Err = %v, want code failed with the exit status", err)
	}
}
