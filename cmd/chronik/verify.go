package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/integration/chaos"
)

// verifyOptions are the flags of `chronik verify`.
type verifyOptions struct {
	backends   []string
	storages   []string
	modes      []string
	pluginsDir string
	duration   time.Duration
	cycles     int
	faults     []string
	seed       uint64
	brokers    int
	partitions int
	producers  int
	dir        string
	out        string
	verbose    bool
}

func newVerifyCmd(c cli) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check durability under faults and compare consensus backends and storages",
		Long: "Start a cluster of `chronik serve` processes for each pairing of backend, storage and\n" +
			"plugin mode, run idempotent acks=all producers and consumers on it while injecting the\n" +
			"faults of a seeded schedule (kill -9, SIGSTOP, Raft-link partitions, latency, power loss,\n" +
			"kill -9 of the storage plugin process), heal, drain, and check the history for lost\n" +
			"acknowledged writes, duplicates, divergent offsets, order violations, failed sends that\n" +
			"became visible, watermarks or committed offsets going backwards and replicas that differ\n" +
			"byte for byte. Every pairing gets the same seed, so the same schedule. The comparison is\n" +
			"written as Markdown and JSON; the exit code is 1 if any run found an anomaly.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, c, o) },
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&o.backends, "backend", []string{"etcd", "hashicorp"}, "consensus backends to run, in order")
	fs.StringSliceVar(&o.storages, "storage", []string{chaos.StorageWAL}, "storage types to run with each backend: wal, pebble (pebble runs only as a subprocess; see --plugins-dir)")
	fs.StringSliceVar(&o.modes, "plugin-mode", []string{string(config.InProcess)}, "where each broker runs its storage: inprocess, subprocess (a plugin child process)")
	fs.StringVar(&o.pluginsDir, "plugins-dir", "", "directory holding chronik-storage-pebble, passed to the brokers as plugins.dir (for --storage pebble)")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "how long each run (one per pairing) injects faults (0: until --cycles)")
	fs.IntVar(&o.cycles, "cycles", 0, "fault cycles per run (0: as many as --duration allows)")
	fs.StringSliceVar(&o.faults, "faults", []string{"kill", "pause", "partition", "powerloss"}, "fault kinds: "+strings.Join(chaos.AllKinds, ",")+
		" (plugin-kill: kill -9 of a broker's storage plugin process, which must take the broker down; needs --plugin-mode subprocess)")
	fs.Uint64Var(&o.seed, "seed", 0, "schedule seed (0: from the clock; printed, to replay a run)")
	fs.IntVar(&o.brokers, "brokers", 3, "brokers per cluster")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of the test topic")
	fs.IntVar(&o.producers, "producers", 4, "concurrent producers")
	fs.StringVar(&o.dir, "dir", "", "where brokers keep data and logs (default: a new temporary directory, kept)")
	fs.StringVar(&o.out, "out", ".", "directory the report (verify.md, verify.json) is written to")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log every fault and progress line")
	return cmd
}

func runVerify(cmd *cobra.Command, c cli, o verifyOptions) error {
	ctx := cmd.Context()
	if len(o.backends) == 0 {
		return usageError{errors.New("verify: --backend names no backend")}
	}
	if o.duration == 0 && o.cycles == 0 {
		return usageError{errors.New("verify: set --duration or --cycles")}
	}
	runs, notes, err := pairings(o)
	if err != nil {
		return err
	}
	if o.pluginsDir != "" {
		if o.pluginsDir, err = filepath.Abs(o.pluginsDir); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(runs, func(p pairing) bool { return p.storage == chaos.StoragePebble }) {
		if err := checkPebblePlugin(o.pluginsDir); err != nil {
			return err
		}
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "chronik-verify-"); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.stderr, "verify: seed %d, data and logs in %s\n", o.seed, o.dir)
	for _, n := range notes {
		fmt.Fprintf(c.stderr, "verify: note: %s\n", n)
	}
	logf := func(format string, args ...any) {
		if o.verbose {
			fmt.Fprintf(c.stderr, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
		}
	}
	// Runs of the default storage and mode only are named by their backend,
	// as before pairings existed.
	byBackend := !slices.ContainsFunc(runs, func(p pairing) bool { return !p.isDefault() })
	var sums []chaos.Summary
	failed := false
	for _, p := range runs {
		label, sub := p.backend, p.backend
		if !byBackend {
			label, sub = p.name(), p.backend+"-"+p.storage+"-"+string(p.mode)
		}
		fmt.Fprintf(c.stderr, "verify: %s: running (%v, %d cycles max, faults %s)\n", label, o.duration, o.cycles, strings.Join(p.kinds, ","))
		res, err := chaos.Run(ctx, chaos.RunOptions{
			Backend: p.backend, Storage: p.storage, PluginMode: p.mode, PluginsDir: o.pluginsDir, Label: label,
			Seed: o.seed, Cycles: o.cycles, Duration: o.duration, Kinds: p.kinds,
			Brokers: o.brokers, Partitions: int32(o.partitions),
			Workload: chaos.WorkloadOptions{Producers: o.producers},
			Binary:   bin, Dir: filepath.Join(o.dir, sub), Logf: logf,
		})
		if err != nil {
			return fmt.Errorf("verify: %s: %w", label, err)
		}
		if !res.OK() {
			failed = true
			replay := p.flags()
			if p.storage == chaos.StoragePebble {
				replay += " --plugins-dir " + o.pluginsDir
			}
			fmt.Fprintf(c.stderr, "verify: %s FAILED (replay with --seed %d %s):\n%s", label, o.seed, replay, res.Report.String())
			for _, e := range res.Errors {
				fmt.Fprintf(c.stderr, "  harness: %s\n", e)
			}
		}
		sums = append(sums, chaos.Summarize(res))
	}
	md := chaos.Markdown(sums)
	js, err := chaos.JSON(sums)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	var pairFlags string
	if !byBackend || len(o.storages) > 1 || len(o.modes) > 1 {
		pairFlags = fmt.Sprintf(" --storage %s --plugin-mode %s", strings.Join(o.storages, ","), strings.Join(o.modes, ","))
	}
	if o.pluginsDir != "" {
		pairFlags += " --plugins-dir " + o.pluginsDir
	}
	header := fmt.Sprintf("# chronik verify\n\n`chronik verify --backend %s%s --duration %v --cycles %d --faults %s --seed %d`\n\n",
		strings.Join(o.backends, ","), pairFlags, o.duration, o.cycles, strings.Join(o.faults, ","), o.seed)
	for _, n := range notes {
		header += "- " + n + "\n"
	}
	if len(notes) > 0 {
		header += "\n"
	}
	if err := os.WriteFile(filepath.Join(o.out, "verify.md"), []byte(header+md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "verify.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprint(c.stdout, md)
	if failed {
		return errors.New("verify: anomalies found or the harness failed; see above")
	}
	return nil
}

// pairing is one run of verify: a consensus backend, a storage type, the
// storage's plugin mode, and the fault kinds the run injects.
type pairing struct {
	backend, storage string
	mode             config.PluginMode
	kinds            []string
}

func (p pairing) name() string { return chaos.PairingName(p.backend, p.storage, p.mode) }

func (p pairing) isDefault() bool { return p.storage == chaos.StorageWAL && p.mode == config.InProcess }

// flags are the command-line flags that select this pairing alone.
func (p pairing) flags() string {
	f := "--backend " + p.backend
	if !p.isDefault() {
		f += " --storage " + p.storage + " --plugin-mode " + string(p.mode)
	}
	return f
}

// pairings returns the runs of o: every backend with every storage and
// every plugin mode, in the order given, except pebble in process (the
// Pebble store exists only as a plugin). Each run takes o.faults, except
// that a kind a pairing cannot take is injected as a kill, so that every
// run gets the same seeded schedule (same steps, targets and durations): a
// plugin-kill when the storage runs in the broker process (its crash is
// the broker's), a powerloss when the storage is not the WAL (only WAL
// segments are cut). The notes say what was skipped or replaced. A kind
// that no pairing can take is an error.
func pairings(o verifyOptions) ([]pairing, []string, error) {
	for _, k := range o.faults {
		if !slices.Contains(chaos.AllKinds, k) {
			return nil, nil, usageError{fmt.Errorf("verify: unknown fault kind %q (want %s)", k, strings.Join(chaos.AllKinds, ","))}
		}
	}
	for _, s := range o.storages {
		if s != chaos.StorageWAL && s != chaos.StoragePebble {
			return nil, nil, usageError{fmt.Errorf("verify: --storage %q: want %s or %s", s, chaos.StorageWAL, chaos.StoragePebble)}
		}
	}
	for _, m := range o.modes {
		if m := config.PluginMode(m); m != config.InProcess && m != config.Subprocess {
			return nil, nil, usageError{fmt.Errorf("verify: --plugin-mode %q: want %s or %s", m, config.InProcess, config.Subprocess)}
		}
	}
	var (
		out   []pairing
		notes []string
	)
	for _, b := range o.backends {
		for _, s := range o.storages {
			for _, m := range o.modes {
				p := pairing{backend: b, storage: s, mode: config.PluginMode(m)}
				if s == chaos.StoragePebble && p.mode == config.InProcess {
					notes = append(notes, fmt.Sprintf("%s skipped: the Pebble store runs only as a plugin subprocess", p.name()))
					continue
				}
				for _, k := range o.faults {
					switch {
					case k == chaos.KindPluginKill && p.mode != config.Subprocess:
						notes = append(notes, fmt.Sprintf("%s: plugin-kill injected as kill (the storage runs in the broker process: its crash is the broker's)", p.name()))
						k = chaos.KindKill
					case k == chaos.KindPowerLoss && s != chaos.StorageWAL:
						notes = append(notes, fmt.Sprintf("%s: powerloss injected as kill (power loss is simulated on WAL segments only)", p.name()))
						k = chaos.KindKill
					}
					p.kinds = append(p.kinds, k)
				}
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		return nil, nil, usageError{errors.New("verify: no pairing of --backend, --storage and --plugin-mode can run (pebble runs only with --plugin-mode subprocess)")}
	}
	for _, k := range o.faults {
		if !slices.ContainsFunc(out, func(p pairing) bool { return slices.Contains(p.kinds, k) }) {
			switch k {
			case chaos.KindPluginKill:
				return nil, nil, usageError{fmt.Errorf("verify: fault %s kills the storage plugin process of a broker: it needs --plugin-mode %s", k, config.Subprocess)}
			case chaos.KindPowerLoss:
				return nil, nil, usageError{fmt.Errorf("verify: fault %s cuts what a WAL had not fsynced: it needs --storage %s", k, chaos.StorageWAL)}
			}
		}
	}
	return out, notes, nil
}

// checkPebblePlugin fails unless dir holds the Pebble plugin executable.
func checkPebblePlugin(dir string) error {
	const exe = "chronik-storage-pebble"
	build := "build it with\n" +
		"  (cd plugins/examples/storage-pebble && go build -o <dir>/" + exe + " ./cmd/" + exe + ")\n" +
		"and pass --plugins-dir <dir>"
	if dir == "" {
		return usageError{fmt.Errorf("verify: --storage pebble runs the Pebble store as a plugin, and no --plugins-dir names where %s is; %s", exe, build)}
	}
	fi, err := os.Stat(filepath.Join(dir, exe))
	if err == nil && (!fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0) {
		err = errors.New("not an executable file")
	}
	if err != nil {
		return usageError{fmt.Errorf("verify: --storage pebble runs the Pebble store as a plugin, and --plugins-dir %s has no %s (%v); %s", dir, exe, err, build)}
	}
	return nil
}
