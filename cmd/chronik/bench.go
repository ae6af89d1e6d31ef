package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/core/component"
)

// benchOptions are the flags of `chronik bench`.
type benchOptions struct {
	brokers     []string
	targets     []string
	records     int
	duration    time.Duration
	recordSize  int
	partitions  int
	replication int
	acks        string
	inflight    int
	storage     string
	consensus   string
	pluginsDir  string
	set         []string
	dir         string
	topic       string
	seed        uint64
	logLevel    string
	json        bool
	cpuprofile  string
}

// Target names.
const (
	targetKfake    = "kfake"
	targetExternal = "external"
	targetChronik  = "chronik-" // followed by the number of brokers
)

// Storage plugin modes of a chronik-N:STORAGE:MODE target.
const (
	modeInProcess      = "inprocess"
	modeSubprocess     = "subprocess"
	modeSubprocessMTLS = "subprocess-mtls" // subprocess with storage.plugin.auto_mtls
)

func newBenchCmd(c cli) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce and consume throughput against Chronik and kfake",
		Long: `Measure produce and consume throughput and produce latency with franz-go's kgo
client, against each target in turn, and report each target's figures as a
ratio of franz-go's in-memory fake broker (kfake) measured in the same run.

For each target, bench creates a topic, produces --records records (or for
--duration) with an asynchronous producer that keeps at most --inflight
records buffered, waits for every acknowledgement, then reads every record
back from the start with a fresh consumer. Values are incompressible random
bytes (from --seed) and the producer does not compress.

Targets (--targets, comma-separated, run in order):
  kfake       franz-go's kfake, one broker, in memory, in this process
  chronik-N   N Chronik brokers in this process on loopback ports, built from
              the defaults exactly as 'chronik serve' builds them (storage wal
              with fsync always, consensus etcd), overridable with --storage,
              --consensus and --set; the topic's replication factor is min(N, 3)
  chronik-N:STORAGE[:MODE]
              the same with storage.type STORAGE and storage.plugin.mode MODE:
              inprocess, subprocess (the store in a plugin process per broker:
              chronik itself for a built-in type, chronik-storage-STORAGE in
              --plugins-dir for another) or subprocess-mtls (subprocess with
              storage.plugin.auto_mtls); MODE defaults to inprocess for a
              built-in type and subprocess for another. These keys win over
              --storage and --set, so one run can compare storage variants
  external    the brokers of --brokers (when --brokers is set, the default
              targets are kfake,external)

Produce latency is the time from the Produce call to the record's
acknowledgement, including any wait for room in the --inflight window.
MB/s counts record values, in 10^6 bytes.

A second table gives, for each target, its storage, its throughput as a
ratio of the in-process wal target with as many brokers in the same run
(chronik-N with the default storage, or chronik-N:wal), how long each
broker took to open its store (for a plugin: start the process, handshake,
open the store, load its groups), the peak resident memory (VmHWM) of each
broker's storage plugin process, and this process's peak resident memory
during the target and its growth over the target's start: this process
holds the client, kfake and every in-process broker and store, so for those
targets the growth is what they used.`,
		Example: `  chronik bench --records 200000
  chronik bench --targets kfake,chronik-1 --duration 30s --json
  chronik bench --brokers 10.0.0.1:9092,10.0.0.2:9092 --replication-factor 3
  chronik bench --targets chronik-1 --set storage.fsync=never --cpuprofile cpu.prof
  chronik bench --targets chronik-1,chronik-1:wal:subprocess,chronik-1:pebble:subprocess --plugins-dir ./plugins`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.brokers) > 0 && !cmd.Flags().Changed("targets") {
				o.targets = []string{targetKfake, targetExternal}
			}
			if err := o.validate(); err != nil {
				return usageError{err}
			}
			return runBench(cmd.Context(), c, o)
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&o.brokers, "brokers", nil, "bootstrap brokers of an external cluster (host:port,...), measured as target external")
	fs.StringSliceVar(&o.targets, "targets", []string{targetKfake, "chronik-1", "chronik-3"}, "what to measure, in order: kfake, chronik-N[:STORAGE[:MODE]], external")
	fs.IntVar(&o.records, "records", 100_000, "records to produce (and consume) per target")
	fs.DurationVar(&o.duration, "duration", 0, "produce for this long instead of a number of records")
	fs.IntVar(&o.recordSize, "record-size", 1024, "bytes in each record's value")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of the benchmark topic")
	fs.IntVar(&o.replication, "replication-factor", 0, "replication factor of the topic (default: 1 for kfake, min(N,3) for chronik-N, the broker default for external)")
	fs.StringVar(&o.acks, "acks", "all", "producer acks: all, 1 or 0 (1 and 0 disable idempotence, which needs all)")
	fs.IntVar(&o.inflight, "inflight", 10_000, "most records buffered in the producer, unacknowledged (kgo.MaxBufferedRecords)")
	fs.StringVar(&o.storage, "storage", "wal", "storage type of in-process Chronik brokers")
	fs.StringVar(&o.consensus, "consensus", "etcd", "consensus type of in-process Chronik brokers")
	fs.StringVar(&o.pluginsDir, "plugins-dir", "", "plugins.dir of in-process Chronik brokers: where chronik-storage-TYPE executables are found")
	fs.StringArrayVar(&o.set, "set", nil, "set a config key of the in-process Chronik brokers: --set key=value (repeatable)")
	fs.StringVar(&o.dir, "dir", "", "where in-process brokers keep their data; a subdirectory is made and removed (default: the temp dir, or ./ if that is tmpfs)")
	fs.StringVar(&o.topic, "topic", "", "topic name (default: chronik-bench-<time>); it must not exist")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the random record values")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of in-process Chronik brokers (to stderr)")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of a table")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write CPU profiles of each target's produce and consume phases to this file name with -<target>-<phase> added before the extension")
	return cmd
}

func (o *benchOptions) validate() error {
	var errs []error
	if len(o.targets) == 0 {
		errs = append(errs, errors.New("--targets is empty"))
	}
	seen := map[string]bool{}
	for _, t := range o.targets {
		if seen[t] {
			errs = append(errs, fmt.Errorf("--targets: %s is listed twice", t))
		}
		seen[t] = true
		switch {
		case t == targetKfake:
		case t == targetExternal:
			if len(o.brokers) == 0 {
				errs = append(errs, errors.New("--targets: external needs --brokers"))
			}
		case strings.HasPrefix(t, targetChronik):
			if _, err := parseChronikTarget(t); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, fmt.Errorf("--targets: unknown target %q: want kfake, chronik-N[:STORAGE[:MODE]] or external", t))
		}
	}
	if o.records <= 0 && o.duration <= 0 {
		errs = append(errs, errors.New("--records must be > 0 (or set --duration)"))
	}
	if o.recordSize < 0 || o.recordSize > 1<<20 {
		errs = append(errs, fmt.Errorf("--record-size %d: want 0 to 1048576", o.recordSize))
	}
	if o.partitions <= 0 {
		errs = append(errs, fmt.Errorf("--partitions %d: want > 0", o.partitions))
	}
	if o.replication < 0 {
		errs = append(errs, fmt.Errorf("--replication-factor %d: want > 0", o.replication))
	}
	if _, err := parseAcks(o.acks); err != nil {
		errs = append(errs, err)
	}
	if o.inflight <= 0 {
		errs = append(errs, fmt.Errorf("--inflight %d: want > 0", o.inflight))
	}
	return errors.Join(errs...)
}

// chronikTarget is a target chronik-N[:STORAGE[:MODE]].
type chronikTarget struct {
	brokers int
	storage string // "": --storage and --set decide
	mode    string // "": inprocess for a built-in type, else subprocess
}

// parseChronikTarget parses a chronik-N[:STORAGE[:MODE]] target.
func parseChronikTarget(target string) (chronikTarget, error) {
	bad := fmt.Errorf("--targets: %q: want chronik-N[:STORAGE[:MODE]] with N from 1 to 9 and MODE %s, %s or %s",
		target, modeInProcess, modeSubprocess, modeSubprocessMTLS)
	parts := strings.Split(target, ":")
	num, ok := strings.CutPrefix(parts[0], targetChronik)
	n, err := strconv.Atoi(num)
	if !ok || err != nil || strconv.Itoa(n) != num || n < 1 || n > 9 || len(parts) > 3 {
		return chronikTarget{}, bad
	}
	t := chronikTarget{brokers: n}
	if len(parts) > 1 {
		if component.Type(parts[1]).Validate() != nil {
			return chronikTarget{}, bad
		}
		t.storage = parts[1]
	}
	if len(parts) > 2 {
		switch parts[2] {
		case modeInProcess, modeSubprocess, modeSubprocessMTLS:
			t.mode = parts[2]
		default:
			return chronikTarget{}, bad
		}
	}
	return t, nil
}

// fileTag is a target's name as it appears in file names (no colons).
func fileTag(target string) string { return strings.ReplaceAll(target, ":", "-") }

// runBench measures every target in turn and prints the report.
func runBench(ctx context.Context, c cli, o benchOptions) error {
	if o.topic == "" {
		o.topic = fmt.Sprintf("chronik-bench-%d", time.Now().Unix())
	}
	needDir := slices.ContainsFunc(o.targets, func(t string) bool { return strings.HasPrefix(t, targetChronik) })
	var runDir string
	if needDir {
		base, err := benchBaseDir(o.dir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(base, 0o750); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		runDir, err = os.MkdirTemp(base, "chronik-bench-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(runDir)
	}
	pool := newValuePool(o.seed, o.recordSize)
	rep := benchReport{
		Params: benchParams{
			Records: o.records, Duration: o.duration.String(), RecordSize: o.recordSize,
			Partitions: o.partitions, Acks: o.acks, Idempotent: o.acks == "all" || o.acks == "-1", Inflight: o.inflight,
			Storage: o.storage, Consensus: o.consensus, PluginsDir: o.pluginsDir, Set: o.set, Dir: runDir,
			GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		},
	}
	if !o.json {
		fmt.Fprintf(c.stdout, "bench: %s\n", rep.Params)
	}
	for _, name := range o.targets {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !o.json {
			fmt.Fprintf(c.stderr, "bench: %s: starting\n", name)
		}
		res, err := benchTarget(ctx, c, o, name, runDir, pool)
		if err != nil {
			return fmt.Errorf("bench %s: %w", name, err)
		}
		rep.Results = append(rep.Results, res)
		if !o.json {
			fmt.Fprintf(c.stderr, "bench: %s: produce %.0f records/s, consume %.0f records/s\n",
				name, res.Produce.RecordsPerSec, res.Consume.RecordsPerSec)
		}
	}
	rep.ratios()
	if o.json {
		return rep.writeJSON(c.stdout)
	}
	return rep.writeTable(c.stdout)
}

// benchTarget starts one target, measures it and stops it.
func benchTarget(ctx context.Context, c cli, o benchOptions, name, runDir string, pool *valuePool) (res benchResult, err error) {
	res.Target = name
	// This process's memory from here on: what the target adds to it.
	debug.FreeOSMemory()
	_, rss0, memErr := procMemory(0)
	if memErr == nil {
		memErr = resetPeakRSS()
	}
	tg, err := startTarget(ctx, c, o, name, runDir)
	if err != nil {
		return res, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err = errors.Join(err, tg.stop(sctx))
	}()
	res.describe(tg.storage)
	w := workload{
		brokers: tg.addrs, topic: o.topic, partitions: o.partitions, replication: tg.replication,
		records: o.records, duration: o.duration, inflight: o.inflight, acks: o.acks, pool: pool,
	}
	if o.replication > 0 {
		w.replication = o.replication
	}
	if err := w.createTopic(ctx); err != nil {
		return res, err
	}
	tag := fileTag(name)
	res.Produce, err = profiled(o.cpuprofile, tag+"-produce", func() (phaseResult, error) { return w.produce(ctx) })
	if err != nil {
		return res, err
	}
	res.Consume, err = profiled(o.cpuprofile, tag+"-consume", func() (phaseResult, error) { return w.consume(ctx, res.Produce.Records) })
	if err != nil {
		return res, err
	}
	// Before the target stops: its plugin processes are still up.
	if tg.storage != nil && slices.ContainsFunc(tg.storage.pids, func(pid int) bool { return pid != 0 }) {
		for _, pid := range tg.storage.pids {
			res.PluginPeakRSSMiB = append(res.PluginPeakRSSMiB, pluginPeak(pid))
		}
	}
	if memErr == nil {
		if peak, _, err := procMemory(0); err == nil {
			res.BenchPeakRSSMiB, res.BenchRSSGrowthMiB = mib(peak), mib(peak-rss0)
		}
	}
	return res, nil
}

// pluginPeak is the peak resident memory of plugin process pid in MiB, or
// -1 if there is none or it cannot be read.
func pluginPeak(pid int) float64 {
	if pid == 0 {
		return -1
	}
	peak, _, err := procMemory(pid)
	if err != nil {
		return -1
	}
	return mib(peak)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// profiled runs phase under a CPU profile written to file, with tag added
// before its extension, if file is set.
func profiled(file, tag string, phase func() (phaseResult, error)) (_ phaseResult, err error) {
	if file == "" {
		return phase()
	}
	stop, err := startCPUProfile(file, tag)
	if err != nil {
		return phaseResult{}, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	return phase()
}

// startCPUProfile profiles into file with tag added before the extension
// (cpu.prof -> cpu-chronik-1-produce.prof).
func startCPUProfile(file, tag string) (stop func() error, err error) {
	ext := filepath.Ext(file)
	path := strings.TrimSuffix(file, ext) + "-" + tag + ext
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// benchBaseDir is the directory the run's data directory is made in: dir
// if set, else the temp dir unless it is in memory (tmpfs would hide the
// cost of fsync), else the working directory.
func benchBaseDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	tmp := os.TempDir()
	inMem, err := isTmpfs(tmp)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	if inMem {
		return ".", nil
	}
	return tmp, nil
}
