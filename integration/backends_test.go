package integration

import (
	"testing"

	"github.com/chronik-go/chronik/core/component"
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
