package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConsensusPluginByEnv runs three `chronik serve` processes whose
// config files name no consensus engine: the environment alone makes it
// hashicorp raft, run as a plugin subprocess of each broker. franz-go
// produces with acks=all to a topic replicated on all three, and kcat
// (when installed) and franz-go read every record back.
func TestConsensusPluginByEnv(t *testing.T) {
	procs := newServeProcs(t, 3, "", "CHRONIK_CONSENSUS_TYPE=hashicorp", consensusPluginEnv)
	for _, p := range procs {
		p.launch(t)
	}
	for _, p := range procs {
		p.waitServing(t)
	}
	for i, p := range procs {
		pid := p.plugin(t, "consensus")
		cmdline, err := procCmdline(pid)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(cmdline, []byte("plugin serve consensus hashicorp")) {
			t.Fatalf("broker %d: its consensus plugin runs %q", i+1, cmdline)
		}
	}
	const topic, partitions, n = "env-topic", 3, 2000
	cl := procs[0].client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 3, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: fmt.Appendf(nil, "v-%06d", i)}
	}
	acks := newAckLog()
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatalf("produce %s: %v", r.Record.Value, r.Err)
		}
		acks.add(t, r.Record)
	}
	// Read back from another broker than the one produced to.
	acks.check(t, readProcTopic(t, procs[1], topic, partitions))

	if _, err := exec.LookPath("kcat"); err != nil {
		t.Log("kcat is not installed (.ci/run installs it): read back with franz-go only")
		return
	}
	brokers := make([]string, len(procs))
	for i, p := range procs {
		brokers[i] = p.kafka
	}
	out, err := exec.CommandContext(ctx, "kcat", "-C", "-b", strings.Join(brokers, ","), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	got := map[string]bool{}
	for _, v := range strings.Fields(string(out)) {
		got[v] = true
	}
	if len(got) != n {
		t.Fatalf("kcat read %d distinct records, want %d", len(got), n)
	}
}

// TestConsensusPluginDataDirBackend: a data directory written by one
// engine run as a plugin is refused by the other, with a message naming
// both, across the process boundary.
func TestConsensusPluginDataDirBackend(t *testing.T) {
	p := newServeProc(t, "hashicorp", consensusPluginEnv)
	p.start(t)
	p.plugin(t, "consensus")
	p.stop(t)
	p.env = []string{consensusPluginEnv, "CHRONIK_CONSENSUS_TYPE=etcd"}
	p.launch(t)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the broker on etcd still runs on hashicorp's data directory; its log ends:\n%s", p.logTail())
	}
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) || ee.ExitCode() <= 0 {
		t.Errorf("the broker exited with %v, want a non-zero exit code", p.waitErr)
	}
	if want := "written by the hashicorp consensus backend; the etcd backend cannot open it"; !strings.Contains(p.logText(), want) {
		t.Errorf("the broker's log does not say %q; it ends:\n%s", want, p.logTail())
	}
}
