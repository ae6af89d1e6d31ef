package configdoc

import (
	"strings"
	"testing"

	"github.com/chronik-go/chronik/core/config"
)

func TestRender(t *testing.T) {
	def := config.Default()
	got, err := Render("# Test\n", []Section{{Title: "Top", Fields: config.Fields(&def, "")}},
		NewComments("../../.."), map[string]string{"broker.max_message_bytes": "fallback | text"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `node.data_dir` | `./data` | `CHRONIK_NODE_DATA_DIR` | The directory",
		"| `telemetry.prometheus_listen` | `127.0.0.1:9464` |",
		"| `cluster.peers` | `[]` | `CHRONIK_CLUSTER_PEERS` |",
		"| `broker.max_message_bytes` | `1048588` | `CHRONIK_BROKER_MAX_MESSAGE_BYTES` | fallback \\| text |",
		"| `telemetry.otlp_endpoint` | `\"\"` |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
