package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WorkloadOptions configure StartWorkload. Zero values take the defaults
// named on each field.
type WorkloadOptions struct {
	Addrs      []string // Kafka seed addresses
	Topic      string   // already created, with Partitions partitions (RF 3)
	Partitions int32
	// Producers is the number of concurrent producers, each with its own
	// idempotent client (default 4).
	Producers int
	// InFlight is the most sends one producer has outstanding to one
	// partition (default 4). The bound is per partition so that a
	// partition without a leader stalls only its own sends.
	InFlight int
	// Readers is the number of assignment readers, each its own client
	// reading every partition from the start (default 1).
	Readers int
	// GroupMembers is the number of consumer-group members, each its own
	// client (default 2).
	GroupMembers int
	// Probes is the number of high-watermark probes, each its own client
	// timing its own ListOffsets and Fetch requests (default 2).
	Probes int
	Group  string // group id (default "chaos")
	// SendTimeout bounds a send: one not resolved within it is Unknown
	// (default 15s).
	SendTimeout time.Duration
	// BigEvery makes every BigEvery-th send of producer 0 a value larger
	// than the client's batch limit, which the client refuses: a Failed
	// send the checker can watch for (default 500; negative: never).
	BigEvery int
	Logf     func(format string, args ...any)

	_ struct{}
}

func (o *WorkloadOptions) defaults() {
	if o.Producers == 0 {
		o.Producers = 4
	}
	if o.InFlight == 0 {
		o.InFlight = 4
	}
	if o.Readers == 0 {
		o.Readers = 1
	}
	if o.GroupMembers == 0 {
		o.GroupMembers = 2
	}
	if o.Probes == 0 {
		o.Probes = 2
	}
	if o.Group == "" {
		o.Group = "chaos"
	}
	if o.SendTimeout == 0 {
		o.SendTimeout = 15 * time.Second
	}
	if o.BigEvery == 0 {
		o.BigEvery = 500
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// bigValueBytes is larger than franz-go's default ProducerBatchMaxBytes
// (1,000,012), so the client refuses such a record before any attempt.
const bigValueBytes = 1_000_100

// metadataMinAge lets the clients refresh metadata as soon as a leader
// fails instead of after kgo's default 5 s, so that failover times
// measure the cluster rather than that client default.
const metadataMinAge = 100 * time.Millisecond

// BigPrefix starts the values of the sends made to fail on purpose.
const BigPrefix = "big-"

// LiveStats are counters a running workload keeps, cheap to read.
type LiveStats struct {
	OK, Failed, Unknown int64
	Observations        int64
}

// Workload produces and consumes one topic while faults are injected, and
// records everything it sees for Check.
//
// The caller starts it with StartWorkload, lets it run, calls Stop once
// (after which every send is resolved), Drain once the cluster healed, and
// Fill to copy the record into a History. Stats may be called at any time.
type Workload struct {
	o      WorkloadOptions
	cancel context.CancelFunc // stops producers
	stopRd context.CancelFunc // stops readers, members and the observer

	prodWG sync.WaitGroup // producer loops
	sendWG sync.WaitGroup // outstanding promises
	readWG sync.WaitGroup // readers, members, commit observer

	ok, failed, unknown, observed atomic.Int64

	mu        sync.Mutex
	start     time.Time
	end       time.Time
	sends     []Send
	obs       []Observation
	hwms      []HWM
	commits   []Commit
	drainEnds map[int32]int64
	stopOnce  sync.Once
}

// StartWorkload starts the producers, readers, group members and the
// commit observer. It fails only if a client cannot be configured; broker
// failures while running are logged and ridden out.
func StartWorkload(ctx context.Context, o WorkloadOptions) (*Workload, error) {
	o.defaults()
	if len(o.Addrs) == 0 || o.Topic == "" || o.Partitions <= 0 {
		return nil, errors.New("chaos: workload needs Addrs, Topic and Partitions")
	}
	w := &Workload{o: o, start: time.Now()}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rctx, stopRd := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel, w.stopRd = cancel, stopRd
	var clients []*kgo.Client
	fail := func(err error) (*Workload, error) {
		cancel()
		stopRd()
		for _, cl := range clients {
			cl.Close()
		}
		return nil, err
	}
	for i := 0; i < o.Readers; i++ {
		r := &reader{name: fmt.Sprintf("assign-%d", i)}
		cl, err := kgo.NewClient(kgo.SeedBrokers(o.Addrs...), kgo.MetadataMinAge(metadataMinAge), kgo.FetchMaxWait(250*time.Millisecond),
			kgo.ConsumePartitions(allPartitions(o.Topic, o.Partitions)))
		if err != nil {
			return fail(fmt.Errorf("chaos: reader client: %w", err))
		}
		clients = append(clients, cl)
		r.cl = cl
		w.readWG.Add(1)
		go w.read(rctx, r)
	}
	for i := 0; i < o.GroupMembers; i++ {
		r := &reader{name: fmt.Sprintf("group-%d", i)}
		cl, err := kgo.NewClient(kgo.SeedBrokers(o.Addrs...), kgo.MetadataMinAge(metadataMinAge), kgo.FetchMaxWait(250*time.Millisecond),
			kgo.ConsumerGroup(o.Group), kgo.ConsumeTopics(o.Topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(500*time.Millisecond))
		if err != nil {
			return fail(fmt.Errorf("chaos: group client: %w", err))
		}
		clients = append(clients, cl)
		r.cl = cl
		w.readWG.Add(1)
		go w.read(rctx, r)
	}
	for i := 0; i < o.Probes; i++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(o.Addrs...), kgo.MetadataMinAge(metadataMinAge))
		if err != nil {
			return fail(fmt.Errorf("chaos: probe client: %w", err))
		}
		clients = append(clients, cl)
		w.readWG.Add(1)
		go w.probe(rctx, fmt.Sprintf("probe-%d", i), cl)
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(o.Addrs...))
	if err != nil {
		return fail(fmt.Errorf("chaos: observer client: %w", err))
	}
	clients = append(clients, adm)
	w.readWG.Add(1)
	go w.observeCommits(rctx, adm)
	for i := 0; i < o.Producers; i++ {
		w.prodWG.Add(1)
		go w.produce(pctx, i)
	}
	return w, nil
}

func allPartitions(topic string, n int32) map[string]map[int32]kgo.Offset {
	ps := make(map[int32]kgo.Offset, n)
	for p := int32(0); p < n; p++ {
		ps[p] = kgo.NewOffset().AtStart()
	}
	return map[string]map[int32]kgo.Offset{topic: ps}
}

// Stats returns the counters so far.
func (w *Workload) Stats() LiveStats {
	return LiveStats{OK: w.ok.Load(), Failed: w.failed.Load(), Unknown: w.unknown.Load(), Observations: w.observed.Load()}
}

// Stop stops producing and waits until every outstanding send resolved
// (a send still unresolved when its client is closed is Unknown), then
// stops the readers, group members and the commit observer and closes
// their clients. It is safe to call more than once.
func (w *Workload) Stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		w.prodWG.Wait()
		w.sendWG.Wait()
		w.stopRd()
		w.readWG.Wait()
		w.mu.Lock()
		w.end = time.Now()
		w.mu.Unlock()
	})
}

// Fill copies what the workload recorded into h: its start and end, the
// sends, observations, high watermarks and commits, and the end offsets
// of the last Drain. Call it after Stop.
func (w *Workload) Fill(h *History) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h.Topic, h.Partitions = w.o.Topic, w.o.Partitions
	h.Start, h.End = w.start, w.end
	h.Sends = append(h.Sends, w.sends...)
	h.Observations = append(h.Observations, w.obs...)
	h.HWMs = append(h.HWMs, w.hwms...)
	h.Commits = append(h.Commits, w.commits...)
	if w.drainEnds != nil {
		if h.DrainEnds == nil {
			h.DrainEnds = make(map[int32]int64, len(w.drainEnds))
		}
		for p, e := range w.drainEnds {
			h.DrainEnds[p] = e
		}
	}
}

// classify maps a send's error to its outcome. The rule: OK on nil; Failed
// only when the record cannot have been written by any attempt; Unknown
// otherwise.
//
// Failed is limited to errors that depend on the record's content alone:
// MESSAGE_TOO_LARGE (the client refuses a record larger than a batch
// before sending it, and a broker answers it for a batch over its
// max.message.bytes), RECORD_LIST_TOO_LARGE, INVALID_RECORD,
// INVALID_TIMESTAMP and INVALID_TOPIC_EXCEPTION. Every attempt of a batch
// carries the same bytes, so if one attempt got such an answer, none was
// appended. Other non-retriable codes are not enough: with an idempotent
// producer an earlier attempt of the same batch may have timed out or lost
// its connection after the broker appended it, and a later attempt may then
// get OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID or the like; kgo
// does not tell which attempts a record had. Timeouts (kgo's delivery
// timeout, a context deadline), broken connections, retries exhausted and
// a client closed with the record buffered are all Unknown.
func classify(err error) Outcome {
	if err == nil {
		return OK
	}
	for _, e := range []*kerr.Error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.InvalidTimestamp, kerr.InvalidTopicException} {
		if errors.Is(err, e) {
			return Failed
		}
	}
	return Unknown
}

// stuckAfter is how many sends in a row must fail (over at least two send
// timeouts) before a producer gives up on its client and starts a new one.
const stuckAfter = 64

func (w *Workload) produce(ctx context.Context, idx int) {
	defer w.prodWG.Done()
	o := w.o
	slots := newSlots(o.Partitions, o.InFlight)
	var session int
	var seq int64
	var streak atomic.Int64 // sends in a row that were not OK
	var lastOK atomic.Int64 // unix nanos of the last OK, or of the session start
	newClient := func() *kgo.Client {
		for {
			cl, err := kgo.NewClient(kgo.SeedBrokers(o.Addrs...), kgo.MetadataMinAge(metadataMinAge), kgo.DefaultProduceTopic(o.Topic),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(o.SendTimeout),
				kgo.ProduceRequestTimeout(o.SendTimeout))
			if err == nil {
				streak.Store(0)
				lastOK.Store(time.Now().UnixNano())
				return cl
			}
			o.Logf("producer %d: new client: %v", idx, err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
	cl := newClient()
	if cl == nil {
		return
	}
	var clWG sync.WaitGroup // this session's outstanding sends
	for ctx.Err() == nil {
		if streak.Load() >= stuckAfter && time.Since(time.Unix(0, lastOK.Load())) > 2*o.SendTimeout {
			o.Logf("producer %d: session %d stuck (%d failed sends in a row), starting a new client", idx, session, streak.Load())
			cl.Close() // what it still holds resolves Unknown
			clWG.Wait()
			if cl = newClient(); cl == nil {
				return
			}
			session++
		}
		part, ok := slots.take(ctx, int32(seq%int64(o.Partitions)))
		if !ok {
			continue
		}
		s := Send{Producer: idx, Session: session, Seq: seq, Partition: part, Offset: -1}
		s.Value = fmt.Sprintf("p%d-%d", idx, seq)
		if idx == 0 && o.BigEvery > 0 && seq%int64(o.BigEvery) == int64(o.BigEvery-1) {
			s.Value = BigPrefix + s.Value
		}
		seq++
		value := []byte(s.Value)
		if strings.HasPrefix(s.Value, BigPrefix) {
			// Padded with dots, which valueOf cuts off again.
			value = append([]byte(s.Value), bytes.Repeat([]byte{'.'}, bigValueBytes-len(s.Value))...)
		}
		rec := &kgo.Record{Topic: o.Topic, Partition: s.Partition, Value: value}
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), o.SendTimeout)
		w.sendWG.Add(1)
		clWG.Add(1)
		s.Start = time.Now()
		cl.Produce(sctx, rec, func(r *kgo.Record, err error) {
			defer w.sendWG.Done()
			defer clWG.Done()
			defer slots.give(part)
			scancel()
			s.End = time.Now()
			s.Outcome = classify(err)
			switch s.Outcome {
			case OK:
				s.Offset = r.Offset
				w.ok.Add(1)
				streak.Store(0)
				lastOK.Store(s.End.UnixNano())
			case Failed:
				s.Err = err.Error()
				w.failed.Add(1)
			default:
				s.Err = err.Error()
				w.unknown.Add(1)
				streak.Add(1)
			}
			w.mu.Lock()
			w.sends = append(w.sends, s)
			w.mu.Unlock()
		})
	}
	// Let what is outstanding resolve, then close: the client fails what
	// it still holds (Unknown).
	fctx, cancel := context.WithTimeout(context.Background(), 2*o.SendTimeout)
	_ = cl.Flush(fctx)
	cancel()
	cl.Close()
	clWG.Wait()
}

// valueOf is the value recorded for a record read: a big value is cut
// before its padding, so that it matches its Send.
func valueOf(v []byte) string {
	if len(v) > 1024 && bytes.HasPrefix(v, []byte(BigPrefix)) {
		if i := bytes.IndexByte(v, '.'); i > 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

// reader is one consuming client, assignment or group.
type reader struct {
	name string
	cl   *kgo.Client
}

func (w *Workload) read(ctx context.Context, r *reader) {
	defer w.readWG.Done()
	defer r.cl.Close()
	for ctx.Err() == nil {
		fs := r.cl.PollFetches(ctx)
		end := time.Now()
		if fs.IsClientClosed() {
			return
		}
		var obs []Observation
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				w.o.Logf("%s: fetch %s-%d: %v", r.name, t, p, err)
			}
		})
		fs.EachRecord(func(rec *kgo.Record) {
			obs = append(obs, Observation{Reader: r.name, Partition: rec.Partition, Offset: rec.Offset, Value: valueOf(rec.Value), At: end})
		})
		w.observed.Add(int64(len(obs)))
		w.mu.Lock()
		w.obs = append(w.obs, obs...)
		w.mu.Unlock()
	}
}

// probe records high watermarks with exact bounds: a consumer's client
// fetches in the background and buffers, so when a polled watermark was
// computed is not known precisely enough to order it against another
// reader's. A probe times each request itself, alternating ListOffsets
// (latest) for every partition and a Fetch without wait from each
// partition's leader, both as a consumer sends them.
func (w *Workload) probe(ctx context.Context, name string, cl *kgo.Client) {
	defer w.readWG.Done()
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for i := 0; ctx.Err() == nil; i++ {
		var hwms []HWM
		if i%2 == 0 {
			start := time.Now()
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ends, err := adm.ListEndOffsets(lctx, w.o.Topic)
			cancel()
			end := time.Now()
			if err == nil {
				ends.Each(func(o kadm.ListedOffset) {
					if o.Err == nil {
						hwms = append(hwms, HWM{Reader: name + "/list", Partition: o.Partition, HWM: o.Offset, Start: start, End: end})
					}
				})
			}
		} else {
			hwms = w.probeFetch(ctx, name+"/fetch", cl, adm)
		}
		w.mu.Lock()
		w.hwms = append(w.hwms, hwms...)
		w.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// probeFetch sends each partition's leader (as metadata names it) a Fetch
// with no wait and at most one byte from offset 0 and records the high
// watermarks it answers with.
func (w *Workload) probeFetch(ctx context.Context, name string, cl *kgo.Client, adm *kadm.Client) []HWM {
	mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	md, err := adm.Metadata(mctx, w.o.Topic)
	cancel()
	if err != nil {
		return nil
	}
	td, ok := md.Topics[w.o.Topic]
	if !ok || td.Err != nil {
		return nil
	}
	byLeader := map[int32][]int32{}
	for _, p := range td.Partitions {
		if p.Err == nil && p.Leader >= 0 {
			byLeader[p.Leader] = append(byLeader[p.Leader], p.Partition)
		}
	}
	var out []HWM
	for leader, parts := range byLeader {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 1
		req.MaxBytes = 1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = w.o.Topic, td.ID
		for _, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, 0, 1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := req.RequestWith(fctx, cl.Broker(int(leader)))
		cancel()
		end := time.Now()
		if err != nil || resp.ErrorCode != 0 {
			continue
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 && p.HighWatermark >= 0 {
					out = append(out, HWM{Reader: name, Partition: p.Partition, HWM: p.HighWatermark, Start: start, End: end})
				}
			}
		}
	}
	return out
}

// observeCommits records the group's committed offsets every 200ms.
func (w *Workload) observeCommits(ctx context.Context, cl *kgo.Client) {
	defer w.readWG.Done()
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := adm.FetchOffsets(rctx, w.o.Group)
		cancel()
		end := time.Now()
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			if ctx.Err() == nil {
				w.o.Logf("commit observer: %v", err)
			}
			continue
		}
		var cs []Commit
		for p, or := range resp[w.o.Topic] {
			if or.Err == nil {
				cs = append(cs, Commit{Group: w.o.Group, Partition: p, Offset: or.At, Start: start, End: end})
			}
		}
		w.mu.Lock()
		w.commits = append(w.commits, cs...)
		w.mu.Unlock()
	}
}

// Drain reads every partition from offset 0 to its end offset with a fresh
// client, once the cluster healed. The end offsets must be listed for every
// partition (it retries through transient errors until ctx ends). It
// returns each partition's records in offset order; if ctx ends before a
// partition was read to its end, it returns what it read and an error.
func (w *Workload) Drain(ctx context.Context) (map[int32][]DrainRecord, error) {
	o := w.o
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Addrs...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("chaos: drain client: %w", err)
	}
	ends, err := listEnds(ctx, kadm.NewClient(cl), o.Topic, o.Partitions, o.Logf)
	cl.Close()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.drainEnds = ends
	w.mu.Unlock()

	ps := make(map[int32]kgo.Offset)
	for p, e := range ends {
		if e > 0 {
			ps[p] = kgo.NewOffset().At(0)
		}
	}
	out := make(map[int32][]DrainRecord, o.Partitions)
	if len(ps) == 0 {
		return out, nil
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(o.Addrs...), kgo.FetchMaxWait(250*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: ps}))
	if err != nil {
		return nil, fmt.Errorf("chaos: drain client: %w", err)
	}
	defer cl.Close()
	next := make(map[int32]int64, len(ps)) // one past the last offset read
	done := func() bool {
		for p := range ps {
			if next[p] < ends[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		if ctx.Err() != nil {
			var short []string
			for p := range ps {
				if next[p] < ends[p] {
					short = append(short, fmt.Sprintf("%d at %d of %d", p, next[p], ends[p]))
				}
			}
			return out, fmt.Errorf("chaos: drain: partitions short of their end: %s: %w", strings.Join(short, ", "), ctx.Err())
		}
		fs := cl.PollFetches(ctx)
		fs.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil {
				o.Logf("drain: fetch %s-%d: %v", t, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return // written after the end was listed (none expected)
			}
			out[r.Partition] = append(out[r.Partition], DrainRecord{Offset: r.Offset, Value: valueOf(r.Value)})
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		})
	}
	return out, nil
}

// listEnds lists the end offset of every partition, retrying until all
// answered or ctx ends.
func listEnds(ctx context.Context, adm *kadm.Client, topic string, n int32, logf func(string, ...any)) (map[int32]int64, error) {
	ends := make(map[int32]int64, n)
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lo, err := adm.ListEndOffsets(lctx, topic)
		cancel()
		if err == nil {
			for p, l := range lo[topic] {
				if l.Err == nil && l.Offset >= 0 {
					ends[p] = l.Offset
				} else if l.Err != nil {
					err = fmt.Errorf("partition %d: %w", p, l.Err)
				}
			}
		}
		if int32(len(ends)) == n {
			return ends, nil
		}
		if err != nil {
			logf("drain: list end offsets: %v", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("chaos: drain: end offsets of %d of %d partitions listed: %w", len(ends), n, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// slots bound one producer's outstanding sends per partition.
type slots struct {
	mu   sync.Mutex
	used []int
	max  int
	wake chan struct{} // signalled when a slot frees
}

func newSlots(partitions int32, perPartition int) *slots {
	return &slots{used: make([]int, partitions), max: perPartition, wake: make(chan struct{}, 1)}
}

// take reserves a slot on the first partition from want on (round-robin)
// that has one free, waiting while none has; false when ctx ends.
func (s *slots) take(ctx context.Context, want int32) (int32, bool) {
	for {
		s.mu.Lock()
		n := int32(len(s.used))
		for i := range n {
			p := (want + i) % n
			if s.used[p] < s.max {
				s.used[p]++
				s.mu.Unlock()
				return p, true
			}
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return 0, false
		}
	}
}

func (s *slots) give(p int32) {
	s.mu.Lock()
	s.used[p]--
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
