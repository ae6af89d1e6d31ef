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

// forEachBackendAndStore runs test once per consensus backend with each
// broker's store in its process (sub-tests named after the backend, as
// forEachBackend), then once per backend with the stores run as plugin
// subprocesses (etcd-storage-plugin, hashicorp-storage-plugin). opts has
// Consensus and StoragePlugin set; the test fills in the rest. It doubles
// a test's time, so only a few tests run this way: enough to drive the
// plugin protocol through real clusters.
func forEachBackendAndStore(t *testing.T, test func(t *testing.T, opts Options)) {
	for _, plugin := range []bool{false, true} {
		for _, b := range backends {
			name := string(b)
			if plugin {
				name += "-storage-plugin"
			}
			t.Run(name, func(t *testing.T) { test(t, Options{Consensus: b, StoragePlugin: plugin}) })
		}
	}
}

// checkStoragePlugins fails the test unless every running broker's store
// is served by a plugin process: a child of this process started as
// `plugin serve storage <type>`.
func checkStoragePlugins(t testing.TB, c *Cluster) {
	t.Helper()
	for i := range c.Size() {
		n := c.Node(i)
		if n == nil {
			continue
		}
		s, ok := n.Store.(*plugins.Store)
		if !ok {
			t.Fatalf("broker %d: store is a %T, not a plugin's", i+1, n.Store)
		}
		if s.Pid() <= 0 {
			t.Fatalf("broker %d: storage plugin pid %d", i+1, s.Pid())
		}
		cmdline, err := procCmdline(s.Pid())
		if err != nil {
			t.Fatalf("broker %d: storage plugin: %v", i+1, err)
		}
		if want := "plugin serve storage " + string(c.cfgs[i].Storage.Type); !bytes.Contains(cmdline, []byte(want)) {
			t.Fatalf("broker %d: storage plugin %d runs %q, want %q in it", i+1, s.Pid(), cmdline, want)
		}
		if ppid, err := procParent(s.Pid()); err != nil || ppid != os.Getpid() {
			t.Fatalf("broker %d: storage plugin %d has parent %d (%v), want this process %d", i+1, s.Pid(), ppid, err, os.Getpid())
		}
	}
}
