package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGroupKafkaJS produces and consumes with kafkajs (Node.js) through a
// group consumer, then checks the group's commits. The kafkajs package is
// installed by .ci/run (npm ci in testdata/kafkajs).
func TestGroupKafkaJS(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "kafkajs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the kafkajs test needs Node.js and npm")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		t.Skip("kafkajs is not installed: run `npm ci` in integration/testdata/kafkajs (.ci/run does)")
	}
	c := StartCluster(t, groupOptions(3))
	const topic, group, n = "kafkajs-topic", "kafkajs-group", 300
	createTopic(t, c, topic, 3, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "group.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BROKERS="+strings.Join(c.Addrs(), ","), "TOPIC="+topic, "GROUP="+group, "N=300")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node group.js: %v\n%s", err, stderr.String())
	}
	var res struct{ Produced, Consumed int }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("kafkajs output %q: %v\n%s", out, err, stderr.String())
	}
	if res.Produced != n || res.Consumed != n {
		t.Fatalf("kafkajs produced %d and consumed %d distinct records, want %d", res.Produced, res.Consumed, n)
	}
	checkCommittedAtEnd(t, c, group, topic)
}
