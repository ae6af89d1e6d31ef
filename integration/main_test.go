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
// its stores or engines as plugins (Options.StoragePlugin,
// ConsensusPlugin): the host re-executes its own binary as
// `<exe> plugin serve storage|consensus <type>`.
func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		servePlugin(os.Args[3], component.Type(os.Args[4]))
	}
	code := m.Run()
	if bin, err := chronikBinary(); err == nil && bin != "" {
		os.RemoveAll(filepath.Dir(bin)) // built once per run, in a directory of its own
	}
	os.Exit(code)
}

// servePlugin serves the built-in component of kind and type t as a
// plugin, then exits.
func servePlugin(kind string, t component.Type) {
	f, err := components.Factories()
	if err == nil {
		switch kind {
		case "storage":
			err = components.ServeStorage(f, t)
		case "consensus":
			err = components.ServeConsensus(f, t)
		default:
			err = fmt.Errorf("unknown kind")
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "plugin serve %s %s: %v\n", kind, t, err)
		os.Exit(2)
	}
	os.Exit(0)
}
