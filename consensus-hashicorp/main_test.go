package hashicorp_test

import (
	"testing"

	"go.uber.org/goleak"

	hashicorp "github.com/chronik-go/chronik/consensus-hashicorp"
	"github.com/chronik-go/chronik/plugins/plugintest"
)

// TestMain serves the engine as a plugin when the plugin-mode tests
// re-execute this binary (plugin_test.go), else runs the tests.
func TestMain(m *testing.M) {
	plugintest.ServeConsensusIfChild(hashicorp.NewFactory())
	goleak.VerifyTestMain(m)
}
