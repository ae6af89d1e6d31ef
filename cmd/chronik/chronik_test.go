package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/chronik-go/chronik/cmd/components"
	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
)

type result struct {
	code           int
	stdout, stderr string
}

// chronik runs the command line in dir (no chronik.yaml unless the test
// writes one) with env as the whole environment.
func chronik(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(context.Background(), cli{
		args: args, env: env, dir: dir, stdout: &out, stderr: &errOut,
	})
	return result{code, out.String(), errOut.String()}
}

// printed runs `config print` and parses its output.
func printed(t *testing.T, dir string, env []string, args ...string) map[string]any {
	t.Helper()
	r := chronik(t, dir, env, append([]string{"config", "print"}, args...)...)
	if r.code != exitOK {
		t.Fatalf("config print: exit %d\n%s", r.code, r.stderr)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("config print output is not YAML: %v\n%s", err, r.stdout)
	}
	return m
}

func get(m map[string]any, key string) any {
	var v any = m
	for _, p := range strings.Split(key, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func TestComponentsList(t *testing.T) {
	f, err := components.Factories()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		kind string
		m    map[component.Type]bool
		t    component.Type
	}{
		{"storage", keys(f.Storage), "memory"},
		{"storage", keys(f.Storage), "wal"},
		{"consensus", keys(f.Consensus), "etcd"},
		{"protocol", keys(f.Protocol), "kafka"},
	} {
		if !want.m[want.t] {
			t.Errorf("%s factory %q missing from components.Factories()", want.kind, want.t)
		}
	}
}

func keys[F any](m map[component.Type]F) map[component.Type]bool {
	out := map[component.Type]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func TestConfigPrintDefaults(t *testing.T) {
	m := printed(t, t.TempDir(), nil)
	for key, want := range map[string]any{
		"node.id":                 1,
		"node.data_dir":           "./data",
		"storage.type":            "wal",
		"storage.fsync":           "always",
		"storage.segment_size":    64 << 20,
		"consensus.type":          "etcd",
		"protocol.listen":         "127.0.0.1:9092",
		"kafka.advertised":        "127.0.0.1:9092",
		"broker.produce_timeout":  "30s",
		"telemetry.log_level":     "info",
		"storage.plugin.mode":     "inprocess",
		"telemetry.otlp_endpoint": "",
	} {
		if got := get(m, key); got != want {
			t.Errorf("%s = %#v, want %#v", key, got, want)
		}
	}
}

// TestPrecedence: default < file < env < flag, through the command line.
func TestPrecedence(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"c.yaml", "node:\n  id: 2\n  data_dir: /file\nstorage:\n  fsync: never\n  segment_size: 1048576\nbroker:\n  default_partitions: 3\n"},
		{"c.toml", "[node]\nid = 2\ndata_dir = \"/file\"\n\n[storage]\nfsync = \"never\"\nsegment_size = 1048576\n\n[broker]\ndefault_partitions = 3\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, tc.name)
			if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			env := []string{"CHRONIK_NODE_DATA_DIR=/env", "CHRONIK_STORAGE_FSYNC=interval", "CHRONIK_BROKER_DEFAULT_PARTITIONS=4", "PATH=/bin"}
			m := printed(t, dir, env, "--config", file, "--data-dir", "/flag", "--set", "broker.default_partitions=5")
			for key, want := range map[string]any{
				"node.id":                   2,          // file over default
				"storage.segment_size":      1048576,    // file over default
				"storage.fsync":             "interval", // env over file
				"node.data_dir":             "/flag",    // named flag over env
				"broker.default_partitions": 5,          // --set over env
				"storage.fsync_interval":    "10ms",     // default
			} {
				if got := get(m, key); got != want {
					t.Errorf("%s = %#v, want %#v", key, got, want)
				}
			}
		})
	}
}

func TestDefaultFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, config.DefaultFile), []byte("node: {id: 7}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := chronik(t, dir, nil, "config", "check")
	if r.code != exitOK || !strings.Contains(r.stdout, "node 7") || !strings.Contains(r.stdout, config.DefaultFile) {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		args []string
		want []string
	}{
		{
			name: "unknown key in file",
			file: "storage:\n  fsycn: never\n",
			want: []string{`unknown key "storage.fsycn" (did you mean "storage.fsync"?)`},
		},
		{
			name: "unknown storage type lists the valid ones",
			args: []string{"--set", "storage.type=rocksdb"},
			want: []string{`storage.type: unknown storage type "rocksdb" (valid: memory, wal)`},
		},
		{
			name: "unknown environment variable",
			env:  []string{"CHRONIK_NODE_DATADIR=/x"},
			want: []string{"environment variable CHRONIK_NODE_DATADIR: no such key (did you mean CHRONIK_NODE_DATA_DIR?)"},
		},
		{
			name: "validation names keys",
			args: []string{"--node-id", "0", "--set", "storage.fsync=sometimes", "--kafka-listen", "nowhere"},
			want: []string{"node.id must be > 0", `storage (type wal): wal: fsync "sometimes"`, `protocol (type kafka): kafka: listen "nowhere"`},
		},
		{
			name: "subprocess plugins",
			args: []string{"--set", "storage.plugin.mode=subprocess", "--set", "storage.segment_size=12", "--set", "consensus.plugin.mode=subprocess", "--set", "consensus.election_ticks=0"},
			want: []string{"wal: segment_size 12 out of range", "etcd: election_ticks"},
		},
		{
			name: "bad flag",
			args: []string{"--no-such-flag"},
			want: []string{"unknown flag: --no-such-flag"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"config", "check"}
			if tt.file != "" {
				file := filepath.Join(dir, "c.yaml")
				if err := os.WriteFile(file, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", file)
			}
			r := chronik(t, dir, tt.env, append(args, tt.args...)...)
			if r.code != exitConfig {
				t.Errorf("exit %d, want %d", r.code, exitConfig)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServe runs `chronik serve` with the embedded defaults (wal storage,
// etcd consensus) on free ports, produces and consumes with a real client
// (the topic is auto-created), then stops it as SIGTERM would.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	kafkaAddr := freePort(t)
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, cli{
			args: []string{"serve", "--data-dir", data, "--kafka-listen", kafkaAddr, "--cluster-listen", freePort(t),
				"--set", "telemetry.prometheus_listen=127.0.0.1:0", "--set", "storage.segment_size=1048576"},
			dir: dir, stdout: &out, stderr: &errOut,
		})
	}()
	for i := 0; ; i++ { // wait for the listener: a refused first dial costs kgo seconds
		c, err := net.Dial("tcp", kafkaAddr)
		if err == nil {
			c.Close()
			break
		}
		if i == 300 {
			t.Fatalf("serve never listened on %s\n%s", kafkaAddr, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic("hello"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte("world")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v\n%s", err, errOut.String())
	}
	t.Logf("produced after %v", time.Since(start))
	consumer, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumeTopics("hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	fs := consumer.PollFetches(pctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "world" {
		t.Fatalf("consumed %v", recs)
	}
	t.Logf("produced and consumed after %v", time.Since(start))
	cancel()
	select {
	case code := <-done:
		t.Logf("stopped\n%s", errOut.String())
		if code != exitOK {
			t.Fatalf("serve exited %d\n%s", code, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop after its context was cancelled")
	}
	for _, w := range []string{"storage open", "broker started", "shutting down"} {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, errOut.String())
		}
	}
	entries, err := os.ReadDir(filepath.Join(data, "storage"))
	if err != nil || len(entries) == 0 {
		t.Errorf("the wal store wrote nothing in <data_dir>/storage: %v %v", entries, err)
	}
}

func TestServeConfigError(t *testing.T) {
	r := chronik(t, t.TempDir(), []string{"CHRONIK_STORAGE_TYPE=nope"}, "serve")
	if r.code != exitConfig || !strings.Contains(r.stderr, `unknown storage type "nope"`) {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitConfig, r.stderr)
	}
}
