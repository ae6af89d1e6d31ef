package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chronik-go/chronik/cmd/components"
	"github.com/chronik-go/chronik/core/component"
)

// TestMain lets this test binary stand in for chronik when a cluster runs
// its stores as plugins (Options.StoragePlugin): the host re-executes its
// own binary as `<exe> plugin serve storage <type>`.
func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "plugin" && os.Args[2] == "serve" && os.Args[3] == "storage" {
		serveStoragePlugin(component.Type(os.Args[4]))
	}
	code := m.Run()
	if bin, err := chronikBinary(); err == nil && bin != "" {
		os.RemoveAll(filepath.Dir(bin)) // built once per run, in a directory of its own
	}
	os.Exit(code)
}

// serveStoragePlugin serves the built-in store t as a plugin, then exits.
func serveStoragePlugin(t component.Type) {
	f, err := components.Factories()
	if err == nil {
		err = components.ServeStorage(f, t)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "plugin serve storage %s: %v\n", t, err)
		os.Exit(2)
	}
	os.Exit(0)
}
