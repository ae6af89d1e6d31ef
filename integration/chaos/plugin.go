package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/chronik-go/chronik/core/config"
)

// The components a broker may run as a plugin subprocess, the targets of
// the plugin-kill fault.
const (
	PluginStorage   = "storage"   // storage.plugin.mode: subprocess
	PluginConsensus = "consensus" // consensus.plugin.mode: subprocess
)

// PluginKiller is a Cluster whose brokers can run components as plugin
// subprocesses (storage.plugin.mode or consensus.plugin.mode:
// subprocess), the target of the plugin-kill fault.
type PluginKiller interface {
	// Plugins lists the components every broker runs as a plugin
	// subprocess, PluginStorage before PluginConsensus; none when both
	// run in the broker process.
	Plugins() []string
	// KillPlugin SIGKILLs broker id's plugin process of component (one of
	// Plugins) and waits until the broker has exited, as it must once its
	// store or its consensus engine is gone, and until its other plugin
	// processes have ended; Start brings it back. A broker that had to be
	// stopped by force is reported as a ForcedError.
	KillPlugin(id int32, component string) (PluginKill, error)
}

// PluginKill is what a plugin-kill did.
type PluginKill struct {
	Component string        // the plugin killed: PluginStorage or PluginConsensus
	Plugins   []int         // the plugin processes killed
	At        time.Time     // when they were killed
	Took      time.Duration // from the kill until the broker exited
	// Exit is how the broker exited: "exit 1" (it stopped, as it should),
	// "panic" (a goroutine panicked first; Panic is its message) or
	// another status.
	Exit  string
	Panic string
}

func (k PluginKill) String() string {
	s := fmt.Sprintf("%s plugin %v killed; the broker exited after %v: %s", k.Component, k.Plugins, k.Took.Round(time.Millisecond), k.Exit)
	if k.Panic != "" {
		s += ": " + k.Panic
	}
	return s
}

// A ForcedError is a fault the cluster did not take as it must (a broker
// that did not exit when its plugin died, a plugin that outlived its
// broker) and that the harness then finished by force: the run records it
// as a harness error and goes on.
type ForcedError struct{ Err error }

func (e *ForcedError) Error() string { return e.Err.Error() }
func (e *ForcedError) Unwrap() error { return e.Err }

// pluginExitLimit bounds how long a plugin may take to exit after its
// broker died (it checks every 200 ms and closes its store or stops its
// engine within 5 s), and how long a broker may take to exit after its
// plugin died (it stops within 5 s).
const pluginExitLimit = 10 * time.Second

// pid is broker id's process id (0 when it is not running), which is
// also its process group's (Setpgid at Start): its plugin processes stay
// in that group when the broker dies.
func (c *ProcCluster) pid(id int32) int {
	b, err := c.broker(id)
	if err != nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Plugins lists the components the brokers run as plugin subprocesses.
func (c *ProcCluster) Plugins() []string {
	var out []string
	if c.opts.StorageMode == config.Subprocess {
		out = append(out, PluginStorage)
	}
	if c.opts.ConsensusMode == config.Subprocess {
		out = append(out, PluginConsensus)
	}
	return out
}

// plugins keeps the plugin processes of component among procs (any
// component: "").
func (c *ProcCluster) plugins(procs []osProc, component string) []osProc {
	var path string
	if c.opts.PluginsDir != "" {
		path = filepath.Join(c.opts.PluginsDir, "chronik-storage-"+c.opts.Storage)
	}
	var out []osProc
	for _, p := range procs {
		storage := component != PluginConsensus && isStoragePlugin(p, path)
		consensus := component != PluginStorage && isConsensusPlugin(p)
		if storage || consensus {
			out = append(out, p)
		}
	}
	return out
}

// waitPluginsGone waits until the plugin processes of broker id, which
// has exited (its pid was pgid), have ended too; it kills those still
// running after pluginExitLimit and reports them as a ForcedError. The
// plugins are found by process group, after the broker's death, so that
// no look-up delays the kill.
func (c *ProcCluster) waitPluginsGone(id int32, pgid int) error {
	if len(c.Plugins()) == 0 || pgid <= 0 {
		return nil
	}
	procs, err := groupMembers(pgid)
	if err != nil {
		return err
	}
	left := waitGone(context.Background(), c.plugins(procs, ""), pluginExitLimit)
	if len(left) == 0 {
		return nil
	}
	var pids []int
	for _, p := range left {
		pids = append(pids, p.pid)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	waitGone(context.Background(), left, 5*time.Second)
	return &ForcedError{fmt.Errorf("chaos: plugin process %v of broker %d still running %v after the broker exited; killed it", pids, id, pluginExitLimit)}
}

// KillPlugin SIGKILLs broker id's plugin process of component and waits
// up to pluginExitLimit for the broker to exit by itself with a non-zero
// status, then for its other plugin processes to end. A broker still
// running then is SIGKILLed, one that exited with status 0 is reported
// too, and so is a plugin that outlived its broker (each as a
// ForcedError); Start restarts the broker.
func (c *ProcCluster) KillPlugin(id int32, component string) (PluginKill, error) {
	k := PluginKill{Component: component}
	if !slices.Contains(c.Plugins(), component) {
		return k, fmt.Errorf("chaos: plugin-kill: broker %d runs no %s plugin process (%s.plugin.mode: %s)", id, component, component, config.InProcess)
	}
	pgid := c.pid(id)
	k, err := c.killPlugin(id, k)
	if werr := c.waitPluginsGone(id, pgid); err == nil {
		err = werr
	}
	return k, err
}

// killPlugin is KillPlugin up to the broker's exit.
func (c *ProcCluster) killPlugin(id int32, k PluginKill) (PluginKill, error) {
	b, err := c.broker(id)
	if err != nil {
		return k, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return k, fmt.Errorf("chaos: broker %d is not running", id)
	}
	procs, err := children(b.cmd.Process.Pid)
	if err != nil {
		return k, err
	}
	if procs = c.plugins(procs, k.Component); len(procs) == 0 {
		return k, fmt.Errorf("chaos: broker %d (pid %d) has no %s plugin process", id, b.cmd.Process.Pid, k.Component)
	}
	k.At = time.Now()
	for _, p := range procs {
		k.Plugins = append(k.Plugins, p.pid)
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
			return k, fmt.Errorf("chaos: kill %s plugin %d of broker %d: %w", k.Component, p.pid, id, err)
		}
	}
	select {
	case <-b.exited:
	case <-time.After(pluginExitLimit):
		_ = b.cmd.Process.Kill()
		<-b.exited
		b.cmd, b.paused = nil, false
		k.Took, k.Exit = time.Since(k.At), "killed by the harness"
		return k, &ForcedError{fmt.Errorf("chaos: broker %d still running %v after its %s plugin %v was killed; killed it", id, pluginExitLimit, k.Component, k.Plugins)}
	}
	k.Took = time.Since(k.At)
	b.cmd, b.paused = nil, false
	var ee *exec.ExitError
	switch {
	case b.exitErr == nil:
		k.Exit = "exit 0"
		return k, &ForcedError{fmt.Errorf("chaos: broker %d exited with status 0 %v after its %s plugin %v was killed; want a failure status", id, k.Took.Round(time.Millisecond), k.Component, k.Plugins)}
	case errors.As(b.exitErr, &ee) && ee.ExitCode() > 0:
		k.Exit = fmt.Sprintf("exit %d", ee.ExitCode())
	default:
		k.Exit = b.exitErr.Error()
	}
	if p := lastPanic(b.logPath); p != "" {
		k.Exit, k.Panic = "panic", p
	}
	return k, nil
}

// lastPanic returns the message of the panic that ended the broker's last
// run, the first line of it its log shows ("" if none did).
func lastPanic(logPath string) string {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	if i := bytes.LastIndex(b, []byte("\n---- chaos: start broker")); i >= 0 {
		b = b[i:]
	}
	i := bytes.Index(b, []byte("\npanic: "))
	if i < 0 {
		return ""
	}
	line, _, _ := bytes.Cut(b[i+len("\npanic: "):], []byte("\n"))
	return string(line)
}

// killGroup SIGKILLs broker id's process group (it and its children, the
// plugin processes) and waits for the broker to exit.
func (c *ProcCluster) killGroup(id int32) error {
	b, err := c.broker(id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return fmt.Errorf("chaos: broker %d is not running", id)
	}
	// Setpgid at Start: the group's id is the broker's pid.
	if err := syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("chaos: kill process group of broker %d: %w", id, err)
	}
	<-b.exited
	b.cmd, b.paused = nil, false
	return nil
}
