package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/chronik-go/chronik/plugins/internal/remote"
	"github.com/chronik-go/chronik/plugins/sdk"
)

// Command is how to start a plugin process.
type Command struct {
	// Path is the executable.
	Path string
	// Args are its arguments (the built-ins: chronik itself, with
	// "plugin serve storage <type>").
	Args []string
	// Env is added to the broker's environment.
	Env []string
	// SHA256, if set, is the hex SHA-256 the executable must have; it is
	// checked before the process starts.
	SHA256 string
	// AutoMTLS has go-plugin authenticate both ends with one-time TLS
	// certificates. Without it, the socket lies in a private (0700)
	// directory that only this user can reach.
	AutoMTLS bool
}

// process is a running plugin: go-plugin's client and the process's exit
// status once it has ended; or, in the shim mode, a server in this process.
type process struct {
	client *plugin.Client
	run    *procRunner
	// shutdown stops a plugin served in this process (the shim mode).
	shutdown func()
}

var _ remote.Process = (*process)(nil)

// Exited is closed when the process has ended (nil in the shim mode).
func (p *process) Exited() <-chan struct{} {
	if p.run == nil {
		return nil
	}
	return p.run.done
}

// Pid is the process id (0 in the shim mode).
func (p *process) Pid() int {
	if p.run == nil {
		return 0
	}
	return p.run.pid
}

// ExitErr says why the process ended (nil while it runs).
func (p *process) ExitErr() error {
	if p.run == nil {
		return nil
	}
	select {
	case <-p.run.done:
		if p.run.waitErr != nil {
			return fmt.Errorf("plugin process %d exited: %v", p.run.pid, p.run.waitErr)
		}
		return fmt.Errorf("plugin process %d exited", p.run.pid)
	default:
		return nil
	}
}

// Stop kills the process (or stops the shim server).
func (p *process) Stop() {
	if p.shutdown != nil {
		p.shutdown()
		return
	}
	p.client.Kill()
	if p.run != nil {
		p.run.close()
	}
}

// start launches the plugin and connects to it; dispense names the
// service to return.
func start(ctx context.Context, name string, c Command, hs plugin.HandshakeConfig, ps plugin.PluginSet, log *slog.Logger) (*process, any, error) {
	if c.Path == "" {
		return nil, nil, fmt.Errorf("%s: no executable", name)
	}
	if c.SHA256 != "" {
		sum, err := hex.DecodeString(c.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, nil, fmt.Errorf("%s: sha256 %q: want 64 hex digits", name, c.SHA256)
		}
		secure := &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
		if ok, err := secure.Check(c.Path); err != nil || !ok {
			if err == nil {
				err = errors.New("checksum mismatch")
			}
			return nil, nil, fmt.Errorf("%s: %s does not have the configured sha256: %w", name, c.Path, err)
		}
	}
	run := &procRunner{done: make(chan struct{})}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  hs,
		Plugins:          ps,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclogTo(log),
		StartTimeout:     30 * time.Second,
		AutoMTLS:         c.AutoMTLS,
		GRPCDialOptions:  sdk.GRPCDialOptions(),
		SyncStdout:       io.Discard,
		SyncStderr:       io.Discard,
		// A private directory (os.MkdirTemp: mode 0700) for the socket.
		UnixSocketConfig: &plugin.UnixSocketConfig{},
		// go-plugin hands the runner a blank command carrying the
		// environment it needs (the broker's, the cookie, the socket
		// directory); the executable's checksum was checked above.
		RunnerFunc: func(l hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			run.cmd = exec.Command(c.Path, c.Args...)
			run.cmd.Env = append(spec.Env, c.Env...)
			run.cmd.Stdin = spec.Stdin
			return run, nil
		},
	}
	client := plugin.NewClient(cfg)
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		run.close()
		return nil, nil, fmt.Errorf("%s: start %s: %w", name, c.Path, versionErr(err, hs.ProtocolVersion))
	}
	var service string
	for k := range ps {
		service = k
	}
	raw, err := rpc.Dispense(service)
	if err != nil {
		client.Kill()
		run.close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return &process{client: client, run: run}, raw, nil
}

// versionErr words go-plugin's version mismatch with both versions.
func versionErr(err error, ours uint) error {
	if s := err.Error(); strings.Contains(s, "incompatible API version") {
		return fmt.Errorf("the plugin speaks another protocol version than this broker (protocol version %d): %w", ours, err)
	}
	return err
}

// procRunner is go-plugin's runner for a local process (go-plugin keeps
// its own internal), which also keeps the exit status.
type procRunner struct {
	cmd            *exec.Cmd
	stdout, stderr io.ReadCloser
	pid            int

	once    sync.Once
	done    chan struct{}
	waitErr error
}

func (r *procRunner) Start(context.Context) error {
	// Pipes of our own rather than cmd.StdoutPipe: Wait closes those, and
	// go-plugin may still be reading the plugin's last lines when the
	// process ends. Ours reach EOF when the plugin's ends close, and are
	// closed by close once go-plugin is done with them.
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	r.cmd.Stdout, r.cmd.Stderr = outW, errW
	err = r.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return err
	}
	r.stdout, r.stderr = outR, errR
	r.pid = r.cmd.Process.Pid
	go r.Wait(context.Background())
	return nil
}

// close releases the pipes (after go-plugin's Kill, which waits for its
// readers).
func (r *procRunner) close() {
	if r.stdout != nil {
		r.stdout.Close()
		r.stderr.Close()
	}
}

func (r *procRunner) Wait(context.Context) error {
	r.once.Do(func() {
		r.waitErr = r.cmd.Wait()
		close(r.done)
	})
	<-r.done
	return r.waitErr
}

func (r *procRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	err := r.cmd.Process.Kill()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func (r *procRunner) Stdout() io.ReadCloser                            { return r.stdout }
func (r *procRunner) Stderr() io.ReadCloser                            { return r.stderr }
func (r *procRunner) Name() string                                     { return r.cmd.Path }
func (r *procRunner) ID() string                                       { return fmt.Sprint(r.pid) }
func (r *procRunner) Diagnose(context.Context) string                  { return "" }
func (r *procRunner) PluginToHost(n, a string) (string, string, error) { return n, a, nil }
func (r *procRunner) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// hclogTo returns an hclog logger (what go-plugin logs with, and how it
// forwards the plugin's stderr lines) that writes into log.
func hclogTo(log *slog.Logger) hclog.Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Debug,
		JSONFormat: true,
		Output:     slogSink{log},
	})
}

// slogSink parses hclog's JSON lines into slog records.
type slogSink struct{ log *slog.Logger }

func (s slogSink) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		s.log.Info(strings.TrimSpace(string(p)))
		return len(p), nil
	}
	msg, _ := m["@message"].(string)
	lvl := slog.LevelInfo
	switch m["@level"] {
	case "trace":
		lvl = slog.LevelDebug - 4
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if !strings.HasPrefix(k, "@") && k != "timestamp" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, m[k])
	}
	s.log.Log(context.Background(), lvl, msg, args...)
	return len(p), nil
}

// absPath resolves a plugin path for logs and checks that it exists.
func absPath(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(a); err != nil {
		return "", err
	}
	return a, nil
}
