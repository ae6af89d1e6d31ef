package integration

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-go/chronik/core/component"
)

// The crash policy of the plugins, with real processes: a broker whose
// storage or consensus plugin dies exits non-zero and a restart recovers;
// a plugin whose broker dies exits by itself and leaves the data
// directory (and the Raft port) to the next broker.

// pluginKinds are the kinds of plugin the crash tests run with, and the
// environment that runs each as a subprocess (the other in process).
var pluginKinds = []struct {
	kind, env string
	consensus component.Type
}{
	{"storage", storagePluginEnv, "etcd"},
	{"consensus", consensusPluginEnv, "hashicorp"},
}

// TestPluginKilled kills -9 a broker's plugin while a producer is
// sending. The broker must exit non-zero within 10 s, naming the plugin
// and how it died; restarted on the same data directory it has every
// acknowledged record once, at its offset, those the producer retried
// across the crash included. The policy is the broker's whatever the
// backend: the storage plugin runs under etcd, the consensus plugin is
// hashicorp's (etcd's in the chaos runs).
func TestPluginKilled(t *testing.T) {
	for _, k := range pluginKinds {
		t.Run(k.kind, func(t *testing.T) { testPluginKilled(t, k.kind, k.env, k.consensus) })
	}
}

func testPluginKilled(t *testing.T, kind, env string, consensus component.Type) {
	b := newServeProc(t, consensus, env)
	b.start(t)
	plugin := b.plugin(t, kind)
	const topic, partitions, n = "crash", 3, 2000
	cl := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordDeliveryTimeout(30*time.Second))
	createProcTopic(t, cl, topic, partitions)

	acks := newAckLog()
	quarter := make(chan struct{})
	var quarterOnce sync.Once
	var wg sync.WaitGroup
	sent := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-sent })
	go func() {
		defer close(sent)
		for i := 0; i < n && ctx.Err() == nil; i++ {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v-%06d", i)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err == nil && acks.add(t, r) >= n/4 {
					quarterOnce.Do(func() { close(quarter) })
				}
			})
			if i%20 == 19 {
				time.Sleep(20 * time.Millisecond) // keep sending across the kill and the restart
			}
		}
	}()
	select {
	case <-quarter:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d of %d records acknowledged after 30 s", acks.len(), n)
	}
	killed := time.Now()
	if err := syscall.Kill(plugin, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the %s plugin %d: %v", kind, plugin, err)
	}
	t.Logf("killed %s plugin %d with %d records acknowledged", kind, plugin, acks.len())
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the broker still runs 10 s after its %s plugin was killed; its log ends:\n%s", kind, b.logTail())
	}
	t.Logf("the broker exited %v after the kill: %v", time.Since(killed).Round(time.Millisecond), b.waitErr)
	var ee *exec.ExitError
	if !errors.As(b.waitErr, &ee) || ee.ExitCode() <= 0 {
		t.Errorf("the broker exited with %v, want a non-zero exit code", b.waitErr)
	}
	log := b.logText()
	if _, trace, ok := strings.Cut(log, "\npanic: "); ok {
		t.Errorf("the broker panicked instead of stopping in order: panic: %s", trace[:min(len(trace), 1500)])
	}
	for _, want := range []string{kind + " plugin died", fmt.Sprintf("plugin process %d exited: signal: killed", plugin)} {
		if !strings.Contains(log, want) {
			t.Errorf("the broker's log does not say %q", want) // stop shows its end
		}
	}

	b.start(t)
	b.plugin(t, kind)
	<-sent
	wg.Wait()
	t.Logf("%d of %d records acknowledged", acks.len(), n)
	acks.check(t, readProcTopic(t, b, topic, partitions))
}

// TestPluginOrphaned kills -9 a broker: its plugin must exit by itself
// within 3 s, so that a restarted broker opens the data directory (the
// store's lock is free) and listens on its Raft port (the engine's
// listener is closed), and has every acknowledged record.
func TestPluginOrphaned(t *testing.T) {
	for _, k := range pluginKinds {
		t.Run(k.kind, func(t *testing.T) { testPluginOrphaned(t, k.kind, k.env, k.consensus) })
	}
}

func testPluginOrphaned(t *testing.T, kind, env string, consensus component.Type) {
	b := newServeProc(t, consensus, env)
	b.start(t)
	plugin := b.plugin(t, kind)
	const topic, partitions, n = "orphan", 3, 500
	cl := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	createProcTopic(t, cl, topic, partitions)
	acks := newAckLog()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: fmt.Appendf(nil, "v-%06d", i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatalf("produce %s: %v", r.Record.Value, r.Err)
		}
		acks.add(t, r.Record)
	}

	b.kill(t)
	killed := time.Now()
	for isPlugin(plugin, kind) {
		if time.Since(killed) > 3*time.Second {
			t.Fatalf("the %s plugin %d still runs 3 s after its broker was killed", kind, plugin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the %s plugin exited %v after its broker", kind, time.Since(killed).Round(time.Millisecond))

	b.start(t)
	b.plugin(t, kind)
	acks.check(t, readProcTopic(t, b, topic, partitions))
}
