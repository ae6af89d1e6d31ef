package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMetricsScrape(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.PrometheusListen = "127.0.0.1:0"
	var logs bytes.Buffer
	tel, err := New(ctx, cfg, Options{LogOutput: &logs, ServiceInstance: "1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})

	set := tel.Settings("storage", "/tmp/x")
	ctr, err := set.MeterProvider.Meter("chronik/test").Int64Counter("chronik.test.appends", metric.WithDescription("test counter"))
	if err != nil {
		t.Fatal(err)
	}
	ctr.Add(ctx, 3)
	set.Logger.Info("hello", "k", "v")
	if !strings.Contains(logs.String(), "component=storage") || !strings.Contains(logs.String(), "k=v") {
		t.Errorf("log line %q lacks component or attribute", logs.String())
	}

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + tel.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !strings.Contains(string(body), "chronik_test_appends_total") || !strings.Contains(string(body), "} 3") {
		t.Fatalf("counter missing from scrape:\n%s", body)
	}
}

// TestHandle registers a handler on the running metrics server and reaches
// it beside /metrics.
func TestHandle(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.PrometheusListen = "127.0.0.1:0"
	tel, err := New(ctx, cfg, Options{LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + tel.MetricsAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/debug/x"); code != http.StatusNotFound {
		t.Fatalf("before Handle: status %d, want 404", code)
	}
	tel.Handle("GET /debug/x", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "x")
	}))
	if code, body := get("/debug/x"); code != http.StatusOK || body != "x" {
		t.Fatalf("after Handle: status %d body %q, want 200 x", code, body)
	}
	if code, _ := get("/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics: status %d", code)
	}
}

func TestDisabled(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PrometheusListen = ""
	tel, err := New(context.Background(), cfg, Options{LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if tel.MetricsAddr() != "" {
		t.Errorf("MetricsAddr = %q, want empty", tel.MetricsAddr())
	}
	tel.Handle("/debug/x", http.NotFoundHandler()) // no server: nothing to do
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // substring of the error; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"json", func(c *Config) { c.LogFormat = "json"; c.LogLevel = "debug" }, ""},
		{"level", func(c *Config) { c.LogLevel = "loud" }, "telemetry.log_level"},
		{"format", func(c *Config) { c.LogFormat = "xml" }, "telemetry.log_format"},
		{"listen", func(c *Config) { c.PrometheusListen = "nope" }, "telemetry.prometheus_listen"},
		{"otlp", func(c *Config) { c.OTLPEndpoint = "127.0.0.1:4318" }, "telemetry.otlp_endpoint"},
		{"otlp ok", func(c *Config) { c.OTLPEndpoint = "http://127.0.0.1:4318" }, ""},
		{"debug", func(c *Config) { c.Debug = true }, ""},
		{"debug without listener", func(c *Config) { c.Debug = true; c.PrometheusListen = "" }, "telemetry.debug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestOTLPTracerProvider(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PrometheusListen = ""
	cfg.OTLPEndpoint = "http://127.0.0.1:4318" // nothing is sent: no span is recorded
	tel, err := New(context.Background(), cfg, Options{LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if tel.sdkTracer == nil || tel.TracerProvider != tel.sdkTracer {
		t.Fatalf("TracerProvider %T is not the SDK provider", tel.TracerProvider)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
