package integration

import (
	"bytes"
	"os"
	"testing"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/plugins"
)

// backends are the consensus backends the cluster tests run against.
var backends = []component.Type{"etcd", "hashicorp"}

// forEachBackend runs test once per consensus backend, each as a sub-test
// named after it.
func forEachBackend(t *testing.T, test func(t *testing.T, consensus component.Type)) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) { test(t, b) })
	}
}

// pairings are the ways the tests that drive the plugins run a cluster:
// each backend with everything in process, then with its engine as a
// plugin subprocess, the store alternating (in process for one backend,
// a plugin too for the other, so that a write crosses both plugins).
var pairings = []Options{
	{Consensus: "etcd"},
	{Consensus: "hashicorp"},
	{Consensus: "etcd", ConsensusPlugin: true, StoragePlugin: true},
	{Consensus: "hashicorp", ConsensusPlugin: true},
}

// forEachPairing runs test once per pairing, as sub-tests named after
// them (etcd, hashicorp, etcd-consensus-plugin-storage-plugin,
// hashicorp-consensus-plugin). opts has Consensus, ConsensusPlugin and
// StoragePlugin set; the test fills in the rest.
func forEachPairing(t *testing.T, test func(t *testing.T, opts Options)) {
	for _, o := range pairings {
		t.Run(o.pairing(), func(t *testing.T) { test(t, o) })
	}
}

// forEachBackendAndStore runs test over the pairings and, besides, with
// each backend in process over its store as a plugin subprocess
// (etcd-storage-plugin, hashicorp-storage-plugin). It triples a test's
// time, so only a few tests run this way: enough to drive both plugin
// protocols through real clusters.
func forEachBackendAndStore(t *testing.T, test func(t *testing.T, opts Options)) {
	forEachPairing(t, test)
	for _, b := range backends {
		o := Options{Consensus: b, StoragePlugin: true}
		t.Run(o.pairing(), func(t *testing.T) { test(t, o) })
	}
}

// checkPlugins fails the test unless every running broker runs the
// components opts puts in plugins in plugin processes: children of this
// process started as `plugin serve storage|consensus <type>`.
func checkPlugins(t testing.TB, c *Cluster) {
	t.Helper()
	for i := range c.Size() {
		n := c.Node(i)
		if n == nil {
			continue
		}
		if c.opts.StoragePlugin {
			s, ok := n.Store.(*plugins.Store)
			if !ok {
				t.Fatalf("broker %d: store is a %T, not a plugin's", i+1, n.Store)
			}
			checkPluginProcess(t, i, s.Pid(), "storage", c.cfgs[i].Storage.Type)
		}
		if c.opts.ConsensusPlugin {
			e, ok := n.Engine.(*plugins.Engine)
			if !ok {
				t.Fatalf("broker %d: engine is a %T, not a plugin's", i+1, n.Engine)
			}
			checkPluginProcess(t, i, e.Pid(), "consensus", c.cfgs[i].Consensus.Type)
		}
	}
}

func checkPluginProcess(t testing.TB, i, pid int, kind string, typ component.Type) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("broker %d: %s plugin pid %d", i+1, kind, pid)
	}
	cmdline, err := procCmdline(pid)
	if err != nil {
		t.Fatalf("broker %d: %s plugin: %v", i+1, kind, err)
	}
	if want := "plugin serve " + kind + " " + string(typ); !bytes.Contains(cmdline, []byte(want)) {
		t.Fatalf("broker %d: %s plugin %d runs %q, want %q in it", i+1, kind, pid, cmdline, want)
	}
	if ppid, err := procParent(pid); err != nil || ppid != os.Getpid() {
		t.Fatalf("broker %d: %s plugin %d has parent %d (%v), want this process %d", i+1, kind, pid, ppid, err, os.Getpid())
	}
}
