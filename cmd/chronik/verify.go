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
	backends []string
	storages []string
	// modes is --plugin-mode, where both the consensus engine and the
	// store run; consensusModes and storageModes (--consensus-mode,
	// --storage-mode) override it for one of them when not empty.
	modes          []string
	consensusModes []string
	storageModes   []string
	pluginsDir     string
	duration       time.Duration
	cycles         int
	faults         []string
	seed           uint64
	brokers        int
	partitions     int
	producers      int
	dir            string
	out            string
	verbose        bool
}

func newVerifyCmd(c cli) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check durability under faults and compare consensus backends, storages and plugin modes",
		Long: "Start a cluster of `chronik serve` processes for each pairing of backend, storage and\n" +
			"where the consensus engine and the store run (in the broker process or as plugin\n" +
			"subprocesses), run idempotent acks=all producers and consumers on it while injecting the\n" +
			"faults of a seeded schedule (kill -9, SIGSTOP, Raft-link partitions, latency, power loss,\n" +
			"kill -9 of a plugin process), heal, drain, and check the history for lost acknowledged\n" +
			"writes, duplicates, divergent offsets, order violations, failed sends that became\n" +
			"visible, watermarks or committed offsets going backwards and replicas that differ byte\n" +
			"for byte. Every pairing gets the same seed, so the same schedule. The comparison is\n" +
			"written as Markdown and JSON; the exit code is 1 if any run found an anomaly.\n\n" +
			"Pairings: each backend with each storage and each --plugin-mode, which places the\n" +
			"consensus engine and the store alike (the Pebble store runs only as a subprocess, so\n" +
			"with pebble only the engine's place varies). --consensus-mode or --storage-mode places\n" +
			"one of them on its own (the other follows --plugin-mode), and the pairings are then\n" +
			"every backend, consensus mode, storage and storage mode. Repeated pairings run once.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, c, o) },
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&o.backends, "backend", []string{"etcd", "hashicorp"}, "consensus backends to run, in order")
	fs.StringSliceVar(&o.storages, "storage", []string{chaos.StorageWAL}, "storage types to run with each backend: wal, pebble (pebble runs only as a subprocess; see --plugins-dir)")
	fs.StringSliceVar(&o.modes, "plugin-mode", []string{string(config.InProcess)}, "where each broker runs both its consensus engine and its store: inprocess, subprocess (each in a plugin child process); a list runs each mode (pebble runs as a subprocess in every mode)")
	fs.StringSliceVar(&o.consensusModes, "consensus-mode", nil, "where each broker runs its consensus engine, instead of --plugin-mode: inprocess, subprocess (a plugin child process, chronik plugin serve consensus <backend>); pairings become the cross product with the storage modes")
	fs.StringSliceVar(&o.storageModes, "storage-mode", nil, "where each broker runs its store, instead of --plugin-mode: inprocess, subprocess (a plugin child process; pebble runs only so); pairings become the cross product with the consensus modes")
	fs.StringVar(&o.pluginsDir, "plugins-dir", "", "directory holding chronik-storage-pebble, passed to the brokers as plugins.dir (for --storage pebble)")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "how long each run (one per pairing) injects faults (0: until --cycles)")
	fs.IntVar(&o.cycles, "cycles", 0, "fault cycles per run (0: as many as --duration allows)")
	fs.StringSliceVar(&o.faults, "faults", []string{"kill", "pause", "partition", "powerloss"}, "fault kinds: "+strings.Join(chaos.AllKinds, ",")+
		" (plugin-kill: kill -9 of one of a broker's plugin processes, its store's or its consensus engine's, drawn from the seed, which must take the broker down; needs a pairing with a subprocess)")
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
	var sums []chaos.Summary
	failed := false
	for _, p := range runs {
		label := p.name()
		fmt.Fprintf(c.stderr, "verify: %s: running (%v, %d cycles max, faults %s)\n", label, o.duration, o.cycles, strings.Join(p.kinds, ","))
		res, err := chaos.Run(ctx, chaos.RunOptions{
			Backend: p.backend, ConsensusMode: p.consensusMode,
			Storage: p.storage, StorageMode: p.storageMode, PluginsDir: o.pluginsDir, Label: label,
			Seed: o.seed, Cycles: o.cycles, Duration: o.duration, Kinds: p.kinds,
			Brokers: o.brokers, Partitions: int32(o.partitions),
			Workload: chaos.WorkloadOptions{Producers: o.producers},
			Binary:   bin, Dir: filepath.Join(o.dir, p.dirName()), Logf: logf,
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
	header := fmt.Sprintf("# chronik verify\n\n`chronik verify %s --duration %v --cycles %d --faults %s --seed %d`\n\n",
		o.pairingFlags(runs), o.duration, o.cycles, strings.Join(o.faults, ","), o.seed)
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

// pairingFlags are the flags of o that select runs, for the command line
// the report shows: --backend, and the storage and mode flags unless every
// run is the default pairing (everything in process, the WAL) and they
// were left alone.
func (o verifyOptions) pairingFlags(runs []pairing) string {
	f := "--backend " + strings.Join(o.backends, ",")
	byBackend := !slices.ContainsFunc(runs, func(p pairing) bool { return !p.isDefault() })
	if !byBackend || len(o.storages) > 1 || len(o.modes) > 1 {
		f += " --storage " + strings.Join(o.storages, ",") + " --plugin-mode " + strings.Join(o.modes, ",")
	}
	if len(o.consensusModes) > 0 {
		f += " --consensus-mode " + strings.Join(o.consensusModes, ",")
	}
	if len(o.storageModes) > 0 {
		f += " --storage-mode " + strings.Join(o.storageModes, ",")
	}
	if o.pluginsDir != "" {
		f += " --plugins-dir " + o.pluginsDir
	}
	return f
}

// pairing is one run of verify: a consensus backend and where its engine
// runs, a storage type and where the store runs, and the fault kinds the
// run injects.
type pairing struct {
	backend       string
	consensusMode config.PluginMode
	storage       string
	storageMode   config.PluginMode
	kinds         []string
}

// name is the pairing's column in the report (chaos.PairingName).
func (p pairing) name() string {
	return chaos.PairingName(p.backend, p.consensusMode, p.storage, p.storageMode)
}

// dirName is the directory under --dir that keeps the pairing's brokers:
// its name with '/' and '+' made '-'.
func (p pairing) dirName() string { return strings.NewReplacer("/", "-", "+", "-").Replace(p.name()) }

func (p pairing) isDefault() bool {
	return p.storage == chaos.StorageWAL && p.consensusMode == config.InProcess && p.storageMode == config.InProcess
}

// samePairing reports whether p and q run the same cluster.
func (p pairing) samePairing(q pairing) bool {
	return p.backend == q.backend && p.consensusMode == q.consensusMode && p.storage == q.storage && p.storageMode == q.storageMode
}

// flags are the command-line flags that select this pairing alone.
func (p pairing) flags() string {
	f := "--backend " + p.backend
	if !p.isDefault() {
		f += " --storage " + p.storage + " --consensus-mode " + string(p.consensusMode) + " --storage-mode " + string(p.storageMode)
	}
	return f
}

// parseModes checks the plugin modes of a flag.
func parseModes(flag string, modes []string) ([]config.PluginMode, error) {
	var out []config.PluginMode
	for _, m := range modes {
		m := config.PluginMode(m)
		if m != config.InProcess && m != config.Subprocess {
			return nil, usageError{fmt.Errorf("verify: --%s %q: want %s or %s", flag, m, config.InProcess, config.Subprocess)}
		}
		out = append(out, m)
	}
	return out, nil
}

// pairings returns the runs of o, in the order given, each pairing once:
// every backend with every storage and every --plugin-mode, which places
// the consensus engine and the store alike; or, when --consensus-mode or
// --storage-mode is given, every backend, consensus mode (that flag, else
// --plugin-mode), storage and storage mode (likewise). The Pebble store
// runs as a subprocess whatever the mode (it exists only as a plugin).
//
// Each run takes o.faults, except that a kind a pairing cannot take is
// injected as a kill, so that every run gets the same seeded schedule
// (same steps, targets and durations): a plugin-kill when both the engine
// and the store run in the broker process (their crash is the broker's),
// a powerloss when the storage is not the WAL (only WAL segments are
// cut). The notes say what was replaced. A kind that no pairing can take
// is an error.
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
	modes, err := parseModes("plugin-mode", o.modes)
	if err != nil {
		return nil, nil, err
	}
	consensusModes, err := parseModes("consensus-mode", o.consensusModes)
	if err != nil {
		return nil, nil, err
	}
	storageModes, err := parseModes("storage-mode", o.storageModes)
	if err != nil {
		return nil, nil, err
	}
	// Each entry places the engine and the store: alike, or all the
	// combinations of the two lists.
	type place struct{ consensus, storage config.PluginMode }
	var places []place
	if len(consensusModes) == 0 && len(storageModes) == 0 {
		for _, m := range modes {
			places = append(places, place{m, m})
		}
	} else {
		if len(consensusModes) == 0 {
			consensusModes = modes
		}
		if len(storageModes) == 0 {
			storageModes = modes
		}
		for _, cm := range consensusModes {
			for _, sm := range storageModes {
				places = append(places, place{cm, sm})
			}
		}
	}
	var (
		out   []pairing
		notes []string
	)
	note := func(n string) {
		if !slices.Contains(notes, n) {
			notes = append(notes, n)
		}
	}
	for _, b := range o.backends {
		for _, s := range o.storages {
			for _, pl := range places {
				p := pairing{backend: b, consensusMode: pl.consensus, storage: s, storageMode: pl.storage}
				if s == chaos.StoragePebble && p.storageMode != config.Subprocess {
					if slices.Contains(o.storageModes, string(config.InProcess)) {
						note("--storage-mode inprocess does not apply to pebble: the Pebble store runs only as a plugin subprocess")
					}
					p.storageMode = config.Subprocess
				}
				if slices.ContainsFunc(out, p.samePairing) {
					continue
				}
				for _, k := range o.faults {
					switch {
					case k == chaos.KindPluginKill && p.consensusMode != config.Subprocess && p.storageMode != config.Subprocess:
						note(fmt.Sprintf("%s: plugin-kill injected as kill (the consensus engine and the storage run in the broker process: their crash is the broker's)", p.name()))
						k = chaos.KindKill
					case k == chaos.KindPowerLoss && s != chaos.StorageWAL:
						note(fmt.Sprintf("%s: powerloss injected as kill (power loss is simulated on WAL segments only)", p.name()))
						k = chaos.KindKill
					}
					p.kinds = append(p.kinds, k)
				}
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		return nil, nil, usageError{errors.New("verify: --backend, --storage and the mode flags make no pairing")}
	}
	for _, k := range o.faults {
		if !slices.ContainsFunc(out, func(p pairing) bool { return slices.Contains(p.kinds, k) }) {
			switch k {
			case chaos.KindPluginKill:
				return nil, nil, usageError{fmt.Errorf("verify: fault %s kills a plugin process of a broker: it needs a pairing that runs the consensus engine or the store as a subprocess (--plugin-mode, --consensus-mode or --storage-mode %s, or --storage %s)", k, config.Subprocess, chaos.StoragePebble)}
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
