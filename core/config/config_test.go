package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
	"github.com/chronik-go/chronik/core/storage"
)

// Test factories, shaped like the real ones: keys with underscores, a
// duration, a validated field.

type walConfig struct {
	// SegmentSize is the size of a segment file.
	SegmentSize int64         `koanf:"segment_size"`
	Fsync       string        `koanf:"fsync"`
	Interval    time.Duration `koanf:"fsync_interval"`
	_           struct{}
}

func (c *walConfig) Validate() error {
	if c.Fsync != "always" && c.Fsync != "interval" && c.Fsync != "never" {
		return errors.New("wal: fsync must be always, interval or never")
	}
	return nil
}

type memConfig struct {
	MaxEntrySize int `koanf:"max_entry_size"`
}

type etcdConfig struct {
	TickInterval time.Duration `koanf:"tick_interval"`
	Workers      int           `koanf:"workers"`
}

type kafkaConfig struct {
	Listen string `koanf:"listen"`
}

func testFactories(t *testing.T) Factories {
	t.Helper()
	noStore := func(context.Context, component.Settings, component.Config) (storage.Store, error) {
		return nil, errors.New("not in tests")
	}
	st, err := component.MakeMap(
		storage.NewFactory("wal", func() component.Config {
			return &walConfig{SegmentSize: 64 << 20, Fsync: "always", Interval: 10 * time.Millisecond}
		}, noStore),
		storage.NewFactory("memory", func() component.Config { return &memConfig{} }, noStore),
	)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := component.MakeMap(consensus.NewFactory("etcd", func() component.Config {
		return &etcdConfig{TickInterval: 100 * time.Millisecond, Workers: 4}
	}, func(context.Context, component.Settings, component.Config, consensus.Params) (consensus.Engine, error) {
		return nil, errors.New("not in tests")
	}))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := component.MakeMap(protocol.NewFactory("kafka", func() component.Config {
		return &kafkaConfig{Listen: "127.0.0.1:9092"}
	}, func(context.Context, component.Settings, component.Config, protocol.Host) (protocol.Server, error) {
		return nil, errors.New("not in tests")
	}))
	if err != nil {
		t.Fatal(err)
	}
	return Factories{Storage: st, Consensus: cs, Protocol: ps}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, src Sources) *Config {
	t.Helper()
	if src.Dir == "" {
		src.Dir = t.TempDir() // never pick up a chronik.yaml lying around
	}
	c, err := Load(testFactories(t), src)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func loadErr(t *testing.T, src Sources) string {
	t.Helper()
	if src.Dir == "" {
		src.Dir = t.TempDir()
	}
	_, err := Load(testFactories(t), src)
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not a *config.Error: %v", err, err)
	}
	return err.Error()
}

func TestDefaults(t *testing.T) {
	c := load(t, Sources{})
	if c.Node.ID != 1 || c.Node.DataDir != "./data" || c.Cluster.ID != "chronik" ||
		c.Cluster.Listen != "127.0.0.1:9093" || len(c.Cluster.Peers) != 0 {
		t.Errorf("node/cluster defaults: %+v %+v", c.Node, c.Cluster)
	}
	if c.Storage.Type != "wal" || c.Consensus.Type != "etcd" || c.Protocol.Type != "kafka" {
		t.Errorf("types: %s %s %s", c.Storage.Type, c.Consensus.Type, c.Protocol.Type)
	}
	if c.Storage.Plugin.Mode != InProcess {
		t.Errorf("plugin mode %q", c.Storage.Plugin.Mode)
	}
	w, ok := c.Storage.Config.(*walConfig)
	if !ok || w.SegmentSize != 64<<20 || w.Fsync != "always" || w.Interval != 10*time.Millisecond {
		t.Errorf("storage config %#v", c.Storage.Config)
	}
	if c.Telemetry.PrometheusListen != "127.0.0.1:9464" || c.Telemetry.LogLevel != "info" || c.Telemetry.LogFormat != "text" {
		t.Errorf("telemetry %+v", c.Telemetry)
	}
	if c.Kafka.Advertised != "127.0.0.1:9092" {
		t.Errorf("kafka.advertised = %q, want the protocol's listen address", c.Kafka.Advertised)
	}
	if c.Broker.MaxMessageBytes != 1048588 {
		t.Errorf("broker defaults not applied: %+v", c.Broker)
	}
	if c.File != "" {
		t.Errorf("File = %q with no file", c.File)
	}
}

// TestPrecedence sets the same keys in every source: default < file < env < flag.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", `
node:
  id: 2
  data_dir: /from/file
broker:
  default_partitions: 2
  balance_interval: 7s
storage:
  segment_size: 1000
  fsync: never
telemetry:
  log_level: debug
`)
	env := []string{
		"CHRONIK_NODE_DATA_DIR=/from/env",
		"CHRONIK_BROKER_DEFAULT_PARTITIONS=3",
		"CHRONIK_STORAGE_SEGMENT_SIZE=2000",
		"HOME=/root", // not ours: ignored
	}
	set := []string{"broker.default_partitions=4", "storage.segment_size=3000"}
	c := load(t, Sources{File: file, Env: env, Set: set})

	if c.Node.ID != 2 {
		t.Errorf("node.id = %d, want 2 (file)", c.Node.ID)
	}
	if c.Node.DataDir != "/from/env" {
		t.Errorf("node.data_dir = %q, want /from/env (env over file)", c.Node.DataDir)
	}
	if c.Broker.DefaultPartitions != 4 {
		t.Errorf("broker.default_partitions = %d, want 4 (flag over env over file)", c.Broker.DefaultPartitions)
	}
	if c.Broker.BalanceInterval != 7*time.Second {
		t.Errorf("broker.balance_interval = %v, want 7s (file)", c.Broker.BalanceInterval)
	}
	if c.Broker.ProduceTimeout != 30*time.Second {
		t.Errorf("broker.produce_timeout = %v, want the default", c.Broker.ProduceTimeout)
	}
	w := c.Storage.Config.(*walConfig)
	if w.SegmentSize != 3000 || w.Fsync != "never" || w.Interval != 10*time.Millisecond {
		t.Errorf("storage = %+v, want segment_size 3000 (flag), fsync never (file), interval default", w)
	}
	if c.Telemetry.LogLevel != "debug" {
		t.Errorf("telemetry.log_level = %q", c.Telemetry.LogLevel)
	}
	if c.File != file {
		t.Errorf("File = %q", c.File)
	}
}

func TestTOML(t *testing.T) {
	file := writeFile(t, "c.toml", `
[node]
id = 3
data_dir = "/toml"

[cluster]
listen = "127.0.0.1:19093"

[[cluster.peers]]
id = 1
addr = "127.0.0.1:19091"
kafka = "127.0.0.1:19191"

[[cluster.peers]]
id = 2
addr = "127.0.0.1:19092"
kafka = "127.0.0.1:19192"

[storage]
type = "memory"
max_entry_size = 4096

[consensus]
tick_interval = "50ms"
`)
	c := load(t, Sources{File: file})
	if c.Node.ID != 3 || c.Node.DataDir != "/toml" || c.Cluster.Listen != "127.0.0.1:19093" {
		t.Errorf("node/cluster: %+v %+v", c.Node, c.Cluster)
	}
	want := []Peer{{1, "127.0.0.1:19091", "127.0.0.1:19191"}, {2, "127.0.0.1:19092", "127.0.0.1:19192"}}
	if !reflect.DeepEqual(c.Cluster.Peers, want) {
		t.Errorf("peers = %+v, want %+v", c.Cluster.Peers, want)
	}
	if m, ok := c.Storage.Config.(*memConfig); !ok || m.MaxEntrySize != 4096 {
		t.Errorf("storage config %#v", c.Storage.Config)
	}
	if e := c.Consensus.Config.(*etcdConfig); e.TickInterval != 50*time.Millisecond || e.Workers != 4 {
		t.Errorf("consensus config %+v", e)
	}
	want2 := []protocol.Broker{{ID: 1, Host: "127.0.0.1", Port: 19191}, {ID: 2, Host: "127.0.0.1", Port: 19192}, {ID: 3, Host: "127.0.0.1", Port: 9092}}
	if got := c.BrokerConfig().Brokers; !reflect.DeepEqual(got, want2) {
		t.Errorf("brokers = %+v, want %+v", got, want2)
	}
}

func TestYAMLPeersAndDefaultFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte(`
node: {id: 1}
cluster:
  peers:
    - {id: 2, addr: "127.0.0.1:9094", kafka: "127.0.0.1:9192"}
    - {id: 3, addr: "127.0.0.1:9095", kafka: "127.0.0.1:9193"}
kafka:
broker: {}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := load(t, Sources{Dir: dir})
	if c.File != filepath.Join(dir, DefaultFile) {
		t.Errorf("File = %q, want the default file", c.File)
	}
	if len(c.Cluster.Peers) != 2 || c.Cluster.Peers[1].Addr != "127.0.0.1:9095" {
		t.Errorf("peers %+v", c.Cluster.Peers)
	}
	if c.Broker.MaxMessageBytes != 1048588 {
		t.Error("an empty broker section wiped the broker defaults")
	}
}

func TestEnvUnderscoreKeysAndPeers(t *testing.T) {
	env := []string{
		"CHRONIK_NODE_DATA_DIR=/d",
		"CHRONIK_STORAGE_TYPE=memory",
		"CHRONIK_STORAGE_MAX_ENTRY_SIZE=77", // exists only for the type chosen in the env
		"CHRONIK_STORAGE_PLUGIN_MODE=inprocess",
		"CHRONIK_CONSENSUS_TICK_INTERVAL=20ms",
		"CHRONIK_TELEMETRY_PROMETHEUS_LISTEN=",
		"CHRONIK_BROKER_AUTO_CREATE_TOPICS=false",
		"CHRONIK_CLUSTER_PEERS=2=127.0.0.1:9094/127.0.0.1:9192, 3=127.0.0.1:9095/h3:9092",
	}
	c := load(t, Sources{Env: env})
	if c.Node.DataDir != "/d" {
		t.Errorf("data_dir %q", c.Node.DataDir)
	}
	if m, ok := c.Storage.Config.(*memConfig); !ok || m.MaxEntrySize != 77 {
		t.Errorf("storage %#v", c.Storage.Config)
	}
	if e := c.Consensus.Config.(*etcdConfig); e.TickInterval != 20*time.Millisecond {
		t.Errorf("tick %v", e.TickInterval)
	}
	if c.Telemetry.PrometheusListen != "" {
		t.Errorf("prometheus_listen %q, want empty (disabled)", c.Telemetry.PrometheusListen)
	}
	if c.Broker.AutoCreateTopics {
		t.Error("auto_create_topics still true")
	}
	want := []Peer{{2, "127.0.0.1:9094", "127.0.0.1:9192"}, {3, "127.0.0.1:9095", "h3:9092"}}
	if !reflect.DeepEqual(c.Cluster.Peers, want) {
		t.Errorf("peers %+v", c.Cluster.Peers)
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"node.data_dir":           "CHRONIK_NODE_DATA_DIR",
		"storage.plugin.mode":     "CHRONIK_STORAGE_PLUGIN_MODE",
		"consensus.type":          "CHRONIK_CONSENSUS_TYPE",
		"storage.segment_size":    "CHRONIK_STORAGE_SEGMENT_SIZE",
		"telemetry.otlp_endpoint": "CHRONIK_TELEMETRY_OTLP_ENDPOINT",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %s, want %s", key, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // yaml, optional
		env  []string
		set  []string
		want []string // substrings of the error
	}{
		{
			name: "unknown key in file",
			file: "storage:\n  fsycn: never\nnode:\n  data_dri: x\n",
			want: []string{`unknown key "storage.fsycn" (did you mean "storage.fsync"?)`, `unknown key "node.data_dri" (did you mean "node.data_dir"?)`},
		},
		{
			name: "key of another type",
			file: "storage:\n  type: memory\n  segment_size: 5\n",
			want: []string{`unknown key "storage.segment_size"`},
		},
		{
			name: "unknown env var",
			env:  []string{"CHRONIK_NODE_DATADIR=x"},
			want: []string{"environment variable CHRONIK_NODE_DATADIR: no such key (did you mean CHRONIK_NODE_DATA_DIR?)"},
		},
		{
			name: "unknown set key",
			set:  []string{"node.idd=3", "novalue"},
			want: []string{"--set node.idd: unknown key", `--set "novalue": want key=value`},
		},
		{
			name: "unknown types list the valid ones",
			set:  []string{"storage.type=rocks", "consensus.type=raft", "storage.whatever=1"},
			env:  []string{"CHRONIK_STORAGE_BLOCK_CACHE=1"},
			want: []string{`storage.type: unknown storage type "rocks" (valid: memory, wal)`, `consensus.type: unknown consensus type "raft" (valid: etcd)`},
		},
		{
			name: "validation names the keys",
			set: []string{
				"node.id=0", "cluster.listen=nope", "broker.default_partitions=0",
				"telemetry.log_format=xml", "storage.fsync=sometimes", "kafka.advertised=x",
				"cluster.peers=0=a:1/a:2,2=127.0.0.1:2/b:1,2=127.0.0.1:3/c",
			},
			want: []string{
				"node.id must be > 0", `cluster.listen "nope"`, "broker.default_partitions must be >= 1",
				`telemetry.log_format "xml"`, "storage (type wal): wal: fsync must be", `kafka.advertised "x"`,
				"cluster.peers[0].id must be > 0", "cluster.peers[2].id 2 is listed twice", `cluster.peers[2].kafka "c"`,
			},
		},
		{
			name: "peer is self",
			set:  []string{"cluster.peers=1=127.0.0.1:1/127.0.0.1:2", "protocol.listen=:9092"},
			want: []string{"cluster.peers[0].id 1 is this broker's own node.id", "kafka.advertised must be set"},
		},
		{
			name: "plugin keys",
			set:  []string{"consensus.plugin.sha256=abc", "storage.plugin.sha256=abc", "protocol.listen=:1"},
			env:  []string{"CHRONIK_STORAGE_PLUGIN_PATH=/bin/p"},
			want: []string{
				"consensus.plugin.sha256 is set but consensus.plugin.mode is inprocess",
				"storage.plugin.path is set but storage.plugin.mode is inprocess",
				"storage.plugin.sha256 is set but storage.plugin.mode is inprocess",
			},
		},
		{
			name: "bad plugin mode and checksum",
			set:  []string{"storage.plugin.mode=subprocess", "storage.plugin.sha256=abc", "consensus.plugin.mode=thread"},
			want: []string{`storage.plugin.sha256 "abc": want 64 hex digits`, `consensus.plugin.mode "thread": want inprocess or subprocess`},
		},
		{
			name: "built-in plugin keys still checked",
			set:  []string{"storage.plugin.mode=subprocess", "storage.segmnt_size=1"},
			want: []string{`unknown key`, "storage.segmnt_size"},
		},
		{
			name: "bad value type",
			set:  []string{"node.id=abc", "broker.balance_interval=soon", "storage.segment_size=big"},
			want: []string{`node.id: cannot parse "abc" as int32`, `broker.balance_interval: cannot parse "soon" as a duration`, `storage.segment_size: cannot parse "big" as int64`},
		},
		{
			name: "bad peer syntax",
			env:  []string{"CHRONIK_CLUSTER_PEERS=127.0.0.1:9094"},
			want: []string{`cluster.peers: "127.0.0.1:9094": want id=addr/kafka`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Sources{Env: tt.env, Set: tt.set}
			if tt.file != "" {
				src.File = writeFile(t, "c.yaml", tt.file)
			}
			msg := loadErr(t, src)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "storage.whatever") || strings.Contains(msg, "BLOCK_CACHE") {
				t.Errorf("keys of a section with an unknown type reported:\n%s", msg)
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	msg := loadErr(t, Sources{File: writeFile(t, "c.json", "{}")})
	if !strings.Contains(msg, "unknown extension") {
		t.Error(msg)
	}
	msg = loadErr(t, Sources{File: writeFile(t, "c.yaml", "node: [")})
	if !strings.Contains(msg, "c.yaml") {
		t.Error(msg)
	}
	msg = loadErr(t, Sources{File: filepath.Join(t.TempDir(), "missing.yaml")})
	if !strings.Contains(msg, "missing.yaml") {
		t.Error(msg)
	}
}

// TestYAMLRoundTrip prints the effective config and loads the output back.
func TestYAMLRoundTrip(t *testing.T) {
	c := load(t, Sources{Set: []string{
		"storage.type=memory", "storage.max_entry_size=9", "cluster.peers=2=127.0.0.1:9094/127.0.0.1:9192",
		"broker.produce_timeout=1m30s", "kafka.advertised=broker1:9092",
	}})
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"data_dir: ./data", "produce_timeout: 1m30s", "max_entry_size: 9", "- id: 2\n      addr: 127.0.0.1:9094\n      kafka: 127.0.0.1:9192", "type: memory"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	c2 := load(t, Sources{File: writeFile(t, "printed.yaml", string(out))})
	c2.File = ""
	// Raw holds values as given: "9" from --set, 9 from the file.
	c.Storage.Raw, c2.Storage.Raw, c.Consensus.Raw, c2.Consensus.Raw = nil, nil, nil, nil
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("round trip differs:\n%+v\n%+v", c, c2)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want string
	}{
		{"", `""`}, {"wal", "wal"}, {5 * time.Second, "5s"}, {true, "true"}, {[]Peer{}, "[]"},
		{int32(7), "7"}, {[]Peer{{2, "a:1", "b:2"}}, "[{id: 2, addr: 'a:1', kafka: 'b:2'}]"},
	} {
		if got := FormatValue(reflect.ValueOf(tt.v)); got != tt.want {
			t.Errorf("FormatValue(%#v) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestDecodeSection(t *testing.T) {
	type cfg struct {
		Size  int           `koanf:"size"`
		Every time.Duration `koanf:"every"`
	}
	c := &cfg{Size: 1, Every: time.Second}
	if err := DecodeSection("storage", map[string]any{"size": "42", "every": "5ms"}, c); err != nil {
		t.Fatal(err)
	}
	if c.Size != 42 || c.Every != 5*time.Millisecond {
		t.Errorf("decoded %+v", *c)
	}
	err := DecodeSection("storage", map[string]any{"sise": 3}, &cfg{})
	if err == nil || !strings.Contains(err.Error(), "sise") {
		t.Errorf("unknown key: got %v, want an error naming it", err)
	}
}

// TestExternalPluginSection: the section of a storage type chronik does not
// have, run as a plugin, is kept as given (file, environment, --set) for
// the plugin to decode.
func TestExternalPluginSection(t *testing.T) {
	file := writeFile(t, "c.yaml", "storage:\n  type: pebble\n  plugin:\n    mode: subprocess\n  cache:\n    size: 64\n")
	c := load(t, Sources{
		File: file,
		Env:  []string{"CHRONIK_STORAGE_MEMTABLE_SIZE=4096"},
		Set:  []string{"storage.sync=false"},
	})
	if c.Storage.Config != nil {
		t.Errorf("Config = %#v, want nil for an external plugin", c.Storage.Config)
	}
	want := map[string]any{"cache": map[string]any{"size": 64}, "memtable_size": "4096", "sync": "false"}
	if !reflect.DeepEqual(c.Storage.Raw, want) {
		t.Errorf("Raw = %#v, want %#v", c.Storage.Raw, want)
	}
	out, err := c.YAML()
	if err != nil || !strings.Contains(string(out), "memtable_size") || !strings.Contains(string(out), "size: 64") {
		t.Errorf("YAML lacks the plugin's keys (%v):\n%s", err, out)
	}
	// In process, the same type is unknown.
	msg := loadErr(t, Sources{Set: []string{"storage.type=pebble"}})
	if !strings.Contains(msg, `unknown storage type "pebble"`) {
		t.Error(msg)
	}
}
