package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// benchTopicTimeout bounds the creation of the topic and the wait for
	// every partition to have a leader.
	benchTopicTimeout = 60 * time.Second
	// benchStallTimeout fails the consume phase when no record arrives
	// for this long.
	benchStallTimeout = 30 * time.Second
	// valuePoolSize is the random bytes record values are sliced from:
	// larger than any compression window, so values never repeat close by.
	valuePoolSize = 16 << 20
)

// valuePool holds random bytes, generated once, that record values are
// sliced from, so that generating values costs nothing during the run and
// they do not compress.
type valuePool struct {
	buf  []byte
	size int
}

func newValuePool(seed uint64, size int) *valuePool {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	buf := make([]byte, valuePoolSize+size)
	_, _ = rand.NewChaCha8(s).Read(buf) // never fails
	return &valuePool{buf: buf, size: size}
}

// value returns record i's value; callers must not modify it.
func (p *valuePool) value(i int) []byte {
	// A stride that is not a multiple of the size varies the alignment.
	off := (i * (p.size + 61)) % (valuePoolSize + 1)
	return p.buf[off : off+p.size : off+p.size]
}

// workload is what one target is measured with.
type workload struct {
	brokers     []string
	topic       string
	partitions  int
	replication int // -1: the broker default
	records     int
	duration    time.Duration // if > 0, produce for this long instead of records
	inflight    int
	acks        string
	pool        *valuePool
}

// phaseResult is the measurement of one phase. Latencies are of produce
// only.
type phaseResult struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	P50Ms         float64 `json:"p50_ms,omitempty"`
	P99Ms         float64 `json:"p99_ms,omitempty"`
}

func (r *phaseResult) rates(elapsed time.Duration) {
	r.Seconds = elapsed.Seconds()
	if r.Seconds > 0 {
		r.RecordsPerSec = float64(r.Records) / r.Seconds
		r.MBPerSec = float64(r.Bytes) / 1e6 / r.Seconds
	}
}

func parseAcks(s string) (kgo.Acks, error) {
	switch s {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("--acks %q: want all, 1 or 0", s)
}

func (w *workload) client(opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(w.brokers...), kgo.ClientID("chronik-bench")}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return cl, nil
}

// createTopic creates the topic and waits until every partition has a
// leader, so that the produce phase does not time leader elections.
func (w *workload) createTopic(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, benchTopicTimeout)
	defer cancel()
	cl, err := w.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(benchTopicTimeout / time.Millisecond)
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = w.topic
	t.NumPartitions = int32(w.partitions)
	t.ReplicationFactor = int16(w.replication)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", w.topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			msg := ""
			if rt.ErrorMessage != nil {
				msg = ": " + *rt.ErrorMessage
			}
			return fmt.Errorf("create topic %s: %w%s", w.topic, err, msg)
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		missing, err := w.leaderless(ctx, cl)
		if err == nil && missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s: %d partitions without a leader after %s (last error: %v)",
				w.topic, missing, benchTopicTimeout, err)
		case <-tick.C:
		}
	}
}

// leaderless returns how many of the topic's partitions have no leader.
func (w *workload) leaderless(ctx context.Context, cl *kgo.Client) (int, error) {
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(w.topic)
	req.Topics = append(req.Topics, mt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return w.partitions, err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return w.partitions, err
		}
		missing := w.partitions
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 0 {
				missing--
			}
		}
		return missing, nil
	}
	return w.partitions, errors.New("topic missing from metadata")
}

// produce writes the records with an asynchronous producer that keeps at
// most w.inflight records unacknowledged, and waits for every
// acknowledgement. A record's latency runs from its Produce call (which
// blocks while the window is full) to its promise.
func (w *workload) produce(ctx context.Context) (phaseResult, error) {
	var res phaseResult
	acks, err := parseAcks(w.acks)
	if err != nil {
		return res, err
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(w.topic),
		kgo.RequiredAcks(acks),
		kgo.MaxBufferedRecords(w.inflight),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}
	if w.acks != "all" && w.acks != "-1" {
		opts = append(opts, kgo.DisableIdempotentWrite()) // idempotence needs acks=all
	}
	cl, err := w.client(opts...)
	if err != nil {
		return res, err
	}
	defer cl.Close()

	var (
		mu       sync.Mutex
		lats     = make([]time.Duration, 0, max(w.records, 1024))
		firstErr error
		failed   atomic.Bool
	)
	start := time.Now()
	for i := 0; ; i++ {
		if w.duration > 0 {
			if time.Since(start) >= w.duration {
				break
			}
		} else if i >= w.records {
			break
		}
		if failed.Load() || ctx.Err() != nil {
			break
		}
		r := &kgo.Record{Value: w.pool.value(i)}
		sent := time.Now()
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			d := time.Since(sent)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				failed.Store(true)
				return
			}
			lats = append(lats, d)
			res.Bytes += int64(len(r.Value))
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return res, fmt.Errorf("produce: flush: %w", err)
	}
	elapsed := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return res, fmt.Errorf("produce: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Records = int64(len(lats))
	res.rates(elapsed)
	slices.Sort(lats)
	res.P50Ms = ms(percentile(lats, 0.50))
	res.P99Ms = ms(percentile(lats, 0.99))
	return res, nil
}

// consume reads want records from the start of every partition with a
// fresh consumer; the time includes its connection and metadata requests.
func (w *workload) consume(ctx context.Context, want int64) (phaseResult, error) {
	var res phaseResult
	cl, err := w.client(
		kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	start := time.Now()
	for res.Records < want {
		pctx, cancel := context.WithTimeout(ctx, benchStallTimeout)
		fs := cl.PollFetches(pctx)
		stalled := pctx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("consume: %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return res, ferr
		}
		n := res.Records
		fs.EachRecord(func(r *kgo.Record) {
			res.Records++
			res.Bytes += int64(len(r.Value))
		})
		if stalled && res.Records == n {
			return res, fmt.Errorf("consume: no record for %s after %d of %d", benchStallTimeout, res.Records, want)
		}
	}
	res.rates(time.Since(start))
	return res, nil
}

// percentile returns the q quantile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
