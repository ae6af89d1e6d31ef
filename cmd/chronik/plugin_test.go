package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// buildPebblePlugin builds the example third-party storage plugin out of
// tree, as its README says, into a plugins directory.
func buildPebblePlugin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the Pebble plugin")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "chronik-storage-pebble"), "./cmd/chronik-storage-pebble")
	cmd.Dir = filepath.Join("..", "..", "plugins", "examples", "storage-pebble")
	cmd.Env = append(os.Environ(), "GOWORK=off") // as a third party builds it
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the Pebble plugin: %v\n%s", err, out)
	}
	return dir
}

// TestPebblePluginByConfig runs a broker on the Pebble plugin, built out of
// tree, by configuration alone: config check and plugin list see it, a bad
// key fails with the plugin's own message, and real clients produce and
// consume through it; a restart finds the data again.
func TestPebblePluginByConfig(t *testing.T) {
	plugins := buildPebblePlugin(t)
	dir := t.TempDir()
	env := []string{
		"CHRONIK_STORAGE_TYPE=pebble",
		"CHRONIK_STORAGE_PLUGIN_MODE=subprocess",
		"CHRONIK_PLUGINS_DIR=" + plugins,
		"CHRONIK_STORAGE_CACHE_SIZE=8388608",
	}
	if r := chronik(t, dir, env, "config", "check"); r.code != exitOK || !strings.Contains(r.stdout, "storage pebble") {
		t.Fatalf("config check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := chronik(t, dir, append(env, "CHRONIK_STORAGE_CACHE_SISE=1"), "config", "check")
	if r.code != exitConfig || !strings.Contains(r.stderr, `storage.cache_sise: unknown key (did you mean "storage.cache_size"?)`) {
		t.Errorf("config check with a key the plugin does not have: exit %d, want %d and its name\n%s", r.code, exitConfig, r.stderr)
	}
	r = chronik(t, dir, append(env, "CHRONIK_STORAGE_MEMTABLE_SIZE=12"), "config", "check")
	if r.code != exitConfig || !strings.Contains(r.stderr, "pebble: memtable_size") {
		t.Errorf("config check with a value the plugin refuses: exit %d\n%s", r.code, r.stderr)
	}
	r = chronik(t, dir, append(env, "CHRONIK_STORAGE_MEMTABLE_SIZE=12"), "serve", "--data-dir", filepath.Join(dir, "bad"))
	if r.code != exitConfig || !strings.Contains(r.stderr, "pebble: memtable_size") {
		t.Errorf("serve with a value the plugin refuses: exit %d\n%s", r.code, r.stderr)
	}
	r = chronik(t, dir, env, "plugin", "list")
	if r.code != exitOK || !strings.Contains(r.stdout, "pebble") || !strings.Contains(r.stdout, filepath.Join(plugins, "chronik-storage-pebble")) {
		t.Errorf("plugin list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	data := filepath.Join(dir, "data")
	for round := range 2 {
		want := 50 * (round + 1)
		serveAndCheck(t, env, data, func(cl *kgo.Client, ctx context.Context) {
			for i := range 50 {
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "pebble", Value: []byte(strconv.Itoa(round*50 + i))}).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}
			}
			got := consumeAll(t, ctx, cl.OptValue(kgo.SeedBrokers).([]string)[0], "pebble", want)
			for i, v := range got {
				if v != strconv.Itoa(i) {
					t.Fatalf("record %d = %q, want %q (round %d)", i, v, strconv.Itoa(i), round)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(data, "storage", "LOCK")); err != nil {
		t.Errorf("the Pebble store did not write <data_dir>/storage: %v", err)
	}
}

// serveAndCheck runs `chronik serve` with env on data until check returns,
// then stops it and expects a clean exit.
func serveAndCheck(t *testing.T, env []string, data string, check func(*kgo.Client, context.Context)) {
	t.Helper()
	kafkaAddr := freePort(t)
	var errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, cli{
			args: []string{"serve", "--data-dir", data, "--kafka-listen", kafkaAddr, "--cluster-listen", freePort(t),
				"--set", "telemetry.prometheus_listen=127.0.0.1:0"},
			env: env, dir: t.TempDir(), stdout: &errOut, stderr: &errOut,
		})
	}()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", kafkaAddr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d\n%s", code, errOut.String())
		default:
		}
		if i == 600 {
			t.Fatalf("serve never listened on %s\n%s", kafkaAddr, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 60*time.Second)
	check(cl, pctx)
	pcancel()
	cl.Close()
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("serve exited %d\n%s", code, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(errOut.String(), "storage plugin started") {
		t.Errorf("log lacks the plugin's start:\n%s", errOut.String())
	}
}

// consumeAll reads n records of topic from the start.
func consumeAll(t *testing.T, ctx context.Context, addr, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}
