package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chronik-go/chronik/core/broker"
	"github.com/chronik-go/chronik/core/consensus"
)

// fakeReplicas hosts t-0 with the bytes "abc"; reading t-1 fails.
type fakeReplicas struct{ listErr error }

func (f fakeReplicas) HostedReplicas() ([]broker.HostedReplica, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	return []broker.HostedReplica{{Topic: "t", Partition: 0, ReplicaState: broker.ReplicaState{
		Leader: 2, Term: 3, StartOffset: 1, NextOffset: 5, FirstIndex: 7, ReadyTerm: 2,
		Consensus: consensus.Status{Role: consensus.RoleFollower, Leader: 2, Term: 4, Commit: 9, Applied: 8},
	}}}, nil
}

func (fakeReplicas) ReplicaRecords(topic string, part int32) ([]byte, broker.ReplicaState, error) {
	switch {
	case topic == "t" && part == 0:
		return []byte("abc"), broker.ReplicaState{Leader: 2, Term: 3, StartOffset: 1, NextOffset: 5, FirstIndex: 7}, nil
	case topic == "t" && part == 1:
		return nil, broker.ReplicaState{}, errors.New("disk on fire")
	}
	return nil, broker.ReplicaState{}, fmt.Errorf("partition %s-%d: %w", topic, part, broker.ErrNotHosted)
}

func debugMux(t *testing.T, b replicaReader, debug bool) *http.ServeMux {
	t.Helper()
	n := &Node{log: slog.New(slog.DiscardHandler), id: 1, debug: debug}
	mux := http.NewServeMux()
	if got := n.registerDebug(mux, b); got != debug {
		t.Fatalf("registerDebug = %v with debug %v", got, debug)
	}
	return mux
}

func serve(mux http.Handler, method, target string) *http.Response {
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func TestDebugReplica(t *testing.T) {
	mux := debugMux(t, fakeReplicas{}, true)
	tests := []struct {
		name   string
		method string
		target string
		code   int
		body   string // substring
	}{
		{"ok", "GET", "/debug/chronik/replica?topic=t&partition=0", 200, "abc"},
		{"no topic", "GET", "/debug/chronik/replica?partition=0", 400, "topic is missing"},
		{"empty topic", "GET", "/debug/chronik/replica?topic=&partition=0", 400, "topic is missing"},
		{"no partition", "GET", "/debug/chronik/replica?topic=t", 400, "partition"},
		{"bad partition", "GET", "/debug/chronik/replica?topic=t&partition=x", 400, `"x"`},
		{"negative partition", "GET", "/debug/chronik/replica?topic=t&partition=-1", 400, `"-1"`},
		{"partition overflows int32", "GET", "/debug/chronik/replica?topic=t&partition=2147483648", 400, "2147483648"},
		{"escaped query", "GET", "/debug/chronik/replica?topic=%zz", 400, ""},
		{"unknown topic", "GET", "/debug/chronik/replica?topic=nope&partition=0", 404, "partition nope-0 is not hosted on broker 1"},
		{"read error", "GET", "/debug/chronik/replica?topic=t&partition=1", 500, "disk on fire"},
		{"post", "POST", "/debug/chronik/replica?topic=t&partition=0", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := serve(mux, tt.method, tt.target)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.body) {
				t.Fatalf("status %d body %q, want %d and %q", resp.StatusCode, body, tt.code, tt.body)
			}
		})
	}

	resp := serve(mux, "GET", "/debug/chronik/replica?topic=t&partition=0")
	for k, want := range map[string]string{
		"Content-Type": "application/octet-stream", "Content-Length": "3",
		"Chronik-Leader": "2", "Chronik-Term": "3", "Chronik-Start-Offset": "1",
		"Chronik-Next-Offset": "5", "Chronik-First-Index": "7",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestDebugReplicas(t *testing.T) {
	resp := serve(debugMux(t, fakeReplicas{}, true), "GET", "/debug/chronik/replicas")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"topic": "t", "partition": 0.0, "leader": 2.0, "term": 3.0,
		"start_offset": 1.0, "next_offset": 5.0, "first_index": 7.0, "serving": false, "ready_term": 2.0,
		"raft_role": "follower", "raft_leader": 2.0, "raft_term": 4.0, "raft_commit": 9.0, "raft_applied": 8.0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}

	resp = serve(debugMux(t, fakeReplicas{listErr: errors.New("stopped")}, true), "GET", "/debug/chronik/replicas")
	if resp.StatusCode != 500 {
		t.Fatalf("list error: status %d, want 500", resp.StatusCode)
	}
}

func TestDebugOff(t *testing.T) {
	mux := debugMux(t, fakeReplicas{}, false)
	for _, target := range []string{"/debug/chronik/replicas", "/debug/chronik/replica?topic=t&partition=0", "/debug/pprof/goroutine?debug=2"} {
		if resp := serve(mux, "GET", target); resp.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", target, resp.StatusCode)
		}
	}
}

// TestDebugGoroutines: the goroutine dump a stuck broker is diagnosed with.
func TestDebugGoroutines(t *testing.T) {
	resp := serve(debugMux(t, fakeReplicas{}, true), "GET", "/debug/pprof/goroutine?debug=2")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "TestDebugGoroutines") {
		t.Fatalf("status %d, body without this test's goroutine:\n%.500s", resp.StatusCode, body)
	}
}
