package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronik-go/chronik/integration/chaos"
)

// verifyOptions are the flags of `chronik verify`.
type verifyOptions struct {
	backends   []string
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
		Short: "Check durability under faults and compare consensus backends",
		Long: "Start a cluster of `chronik serve` processes for each backend, run idempotent acks=all\n" +
			"producers and consumers on it while injecting the faults of a seeded schedule (kill -9,\n" +
			"SIGSTOP, Raft-link partitions, latency, power loss), heal, drain, and check the history for\n" +
			"lost acknowledged writes, duplicates, divergent offsets, order violations, failed sends\n" +
			"that became visible, watermarks or committed offsets going backwards and replicas that\n" +
			"differ byte for byte. Every backend gets the same seed, so the same schedule. The\n" +
			"comparison is written as Markdown and JSON; the exit code is 1 if any run found an anomaly.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, c, o) },
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&o.backends, "backend", []string{"etcd", "hashicorp"}, "consensus backends to run, in order")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "how long each backend's run injects faults (0: until --cycles)")
	fs.IntVar(&o.cycles, "cycles", 0, "fault cycles per backend (0: as many as --duration allows)")
	fs.StringSliceVar(&o.faults, "faults", []string{"kill", "pause", "partition", "powerloss"}, "fault kinds: "+strings.Join(chaos.AllKinds, ","))
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
	logf := func(format string, args ...any) {
		if o.verbose {
			fmt.Fprintf(c.stderr, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
		}
	}
	var sums []chaos.Summary
	failed := false
	for _, b := range o.backends {
		fmt.Fprintf(c.stderr, "verify: %s: running (%v, %d cycles max, faults %s)\n", b, o.duration, o.cycles, strings.Join(o.faults, ","))
		res, err := chaos.Run(ctx, chaos.RunOptions{
			Backend: b, Seed: o.seed, Cycles: o.cycles, Duration: o.duration, Kinds: o.faults,
			Brokers: o.brokers, Partitions: int32(o.partitions),
			Workload: chaos.WorkloadOptions{Producers: o.producers},
			Binary:   bin, Dir: filepath.Join(o.dir, b), Logf: logf,
		})
		if err != nil {
			return fmt.Errorf("verify: %s: %w", b, err)
		}
		if !res.OK() {
			failed = true
			fmt.Fprintf(c.stderr, "verify: %s FAILED (replay with --seed %d --backend %s):\n%s", b, o.seed, b, res.Report.String())
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
	header := fmt.Sprintf("# chronik verify\n\n`chronik verify --backend %s --duration %v --cycles %d --faults %s --seed %d`\n\n",
		strings.Join(o.backends, ","), o.duration, o.cycles, strings.Join(o.faults, ","), o.seed)
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
