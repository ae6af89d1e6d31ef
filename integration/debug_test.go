package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/telemetry"
)

// serveDebug starts each broker's telemetry from its config, as chronik
// serve does, and registers the broker's debug endpoints on it. It returns
// each broker's metrics address and whether the endpoints were registered.
func serveDebug(t *testing.T, c *Cluster) ([]string, []bool) {
	t.Helper()
	addrs := make([]string, c.Size())
	on := make([]bool, c.Size())
	for i := range c.Size() {
		tel, err := telemetry.New(context.Background(), c.cfgs[i].Telemetry, telemetry.Options{LogOutput: io.Discard})
		if err != nil {
			t.Fatalf("broker %d: telemetry: %v", i+1, err)
		}
		t.Cleanup(func() {
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Errorf("broker %d: telemetry shutdown: %v", i+1, err)
			}
		})
		addrs[i] = tel.MetricsAddr()
		on[i] = c.Node(i).RegisterDebug(tel)
	}
	return addrs, on
}

// httpGet returns the status, headers and body of GET http://addr+path.
func httpGet(t *testing.T, addr, path string) (int, http.Header, []byte) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func replicaPath(topic string, p int32) string {
	return "/debug/chronik/replica?" + url.Values{"topic": {topic}, "partition": {strconv.Itoa(int(p))}}.Encode()
}

func TestDebugEndpoints(t *testing.T) { forEachBackend(t, testDebugEndpoints) }

func testDebugEndpoints(t *testing.T, consensus component.Type) {
	c := StartCluster(t, Options{Brokers: 3, Consensus: consensus, Configure: func(cfg *config.Config) {
		cfg.Telemetry.PrometheusListen = "127.0.0.1:0"
		cfg.Telemetry.Debug = true
	}})
	addrs, on := serveDebug(t, c)
	if slices.Contains(on, false) {
		t.Fatalf("debug endpoints registered: %v, want all", on)
	}
	const topic = "debug"
	const partitions = 3
	const records = 300
	createTopic(t, c, topic, partitions, 3)
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	acked := produceN(t, cl, topic, records)
	waitReplicasEqual(t, c, topic, partitions, acked)

	// Each partition: the same bytes from every broker, holding what was
	// acknowledged, and next offsets at the acknowledged count.
	total := 0
	for p := int32(0); p < partitions; p++ {
		var ref []byte
		for i, addr := range addrs {
			code, h, body := httpGet(t, addr, replicaPath(topic, p))
			if code != http.StatusOK {
				t.Fatalf("broker %d, partition %d: status %d: %s", i+1, p, code, body)
			}
			if ct := h.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("broker %d: Content-Type %q", i+1, ct)
			}
			if next := h.Get("Chronik-Next-Offset"); next != strconv.Itoa(len(acked[p])) {
				t.Errorf("broker %d, partition %d: Chronik-Next-Offset %s, want %d", i+1, p, next, len(acked[p]))
			}
			if start := h.Get("Chronik-Start-Offset"); start != "0" {
				t.Errorf("broker %d, partition %d: Chronik-Start-Offset %s, want 0", i+1, p, start)
			}
			for _, k := range []string{"Chronik-Leader", "Chronik-Term", "Chronik-First-Index"} {
				if _, err := strconv.ParseUint(h.Get(k), 10, 64); err != nil {
					t.Errorf("broker %d, partition %d: %s %q: %v", i+1, p, k, h.Get(k), err)
				}
			}
			if i == 0 {
				ref = body
				checkAcked(t, p, recordValues(t, body), acked[p])
			} else if !bytes.Equal(ref, body) {
				t.Errorf("partition %d: broker %d serves %d bytes, broker 1 %d", p, i+1, len(body), len(ref))
			}
		}
		total += len(acked[p])
	}
	if total != records {
		t.Fatalf("%d records acknowledged, want %d", total, records)
	}

	// The listing names every partition of the topic, on every broker (the
	// replication factor is the cluster size).
	for i, addr := range addrs {
		code, h, body := httpGet(t, addr, "/debug/chronik/replicas")
		if code != http.StatusOK || h.Get("Content-Type") != "application/json" {
			t.Fatalf("broker %d: replicas: status %d, Content-Type %q: %s", i+1, code, h.Get("Content-Type"), body)
		}
		var list []struct {
			Topic       string `json:"topic"`
			Partition   int32  `json:"partition"`
			Leader      uint64 `json:"leader"`
			Term        uint64 `json:"term"`
			StartOffset int64  `json:"start_offset"`
			NextOffset  int64  `json:"next_offset"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("broker %d: replicas: %v: %s", i+1, err, body)
		}
		var got []string
		for _, r := range list {
			if r.Topic == topic {
				got = append(got, fmt.Sprintf("%d:%d-%d", r.Partition, r.StartOffset, r.NextOffset))
			}
		}
		var want []string
		for p := int32(0); p < partitions; p++ {
			want = append(want, fmt.Sprintf("%d:0-%d", p, len(acked[p])))
		}
		if !slices.Equal(got, want) {
			t.Errorf("broker %d: replicas of %s (partition:start-next) %v, want %v", i+1, topic, got, want)
		}
	}

	// Bad input: 400 for malformed parameters, 404 for what is not hosted.
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/debug/chronik/replica", http.StatusBadRequest},
		{"/debug/chronik/replica?topic=" + topic, http.StatusBadRequest},
		{"/debug/chronik/replica?topic=" + topic + "&partition=one", http.StatusBadRequest},
		{"/debug/chronik/replica?topic=" + topic + "&partition=-1", http.StatusBadRequest},
		{"/debug/chronik/replica?partition=0", http.StatusBadRequest},
		{replicaPath("no-such-topic", 0), http.StatusNotFound},
		{replicaPath(topic, partitions), http.StatusNotFound},
		{replicaPath(topic, 1<<31-1), http.StatusNotFound},
	} {
		if code, _, body := httpGet(t, addrs[0], tt.path); code != tt.code {
			t.Errorf("%s: status %d, want %d: %s", tt.path, code, tt.code, body)
		}
	}
}

// TestDebugEndpointsOff checks that without telemetry.debug the metrics
// listener serves no debug endpoint.
func TestDebugEndpointsOff(t *testing.T) {
	c := StartCluster(t, Options{Brokers: 1, Configure: func(cfg *config.Config) {
		cfg.Telemetry.PrometheusListen = "127.0.0.1:0"
	}})
	addrs, on := serveDebug(t, c)
	if on[0] {
		t.Fatal("debug endpoints registered with telemetry.debug off")
	}
	createTopic(t, c, "t", 1, 1)
	for _, path := range []string{"/debug/chronik/replicas", replicaPath("t", 0)} {
		if code, _, body := httpGet(t, addrs[0], path); code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404: %s", path, code, body)
		}
	}
	if code, _, _ := httpGet(t, addrs[0], "/metrics"); code != http.StatusOK {
		t.Errorf("/metrics: status %d", code)
	}
}
