package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"time"

	"github.com/chronik-go/chronik/core/protocol"
)

var _ protocol.AdminHost = (*Broker)(nil)

// truncateEntry is the partition log entry that moves the log start to off.
func truncateEntry(off int64) []byte {
	data := make([]byte, 9)
	data[0] = cmdTruncate
	binary.BigEndian.PutUint64(data[1:], uint64(off))
	return data
}

// compactPartition drops a replica's log prefix after its log start moved
// (called from apply, so it must not block: the work runs in a goroutine).
func (b *Broker) compactPartition(p *partition) {
	if !b.track() {
		return
	}
	go func() {
		defer b.wg.Done()
		b.mu.RLock()
		r := b.parts[p.group]
		b.mu.RUnlock()
		if r == nil || b.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		if err := r.g.Compact(ctx); err != nil && b.ctx.Err() == nil {
			b.log.Warn("compact partition log", "topic", p.topic, "partition", p.index, "err", err)
		}
	}()
}

// truncate proposes a new log start offset on a partition this broker
// leads and returns the log start after it is applied.
func (b *Broker) truncate(ctx context.Context, r *replica, off int64) (int64, protocol.ErrorCode) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ProduceTimeout)
	defer cancel()
	index, err := r.g.Propose(ctx, truncateEntry(off))
	if err != nil {
		return -1, errorFromConsensus(err)
	}
	ar, _ := r.p.takeResult(index)
	return ar.baseOffset, ar.err
}

// DeleteRecords implements protocol.AdminHost.
func (b *Broker) DeleteRecords(ctx context.Context, req []protocol.DeleteRecordsPartition) []protocol.DeleteRecordsResult {
	out := make([]protocol.DeleteRecordsResult, len(req))
	for i, dr := range req {
		res := &out[i]
		res.Topic, res.Partition, res.LowWatermark = dr.Topic, dr.Partition, -1
		r, _, code := b.lookup(dr.Topic, dr.Partition)
		if code != protocol.ErrNone {
			res.Err = code
			continue
		}
		if dr.Topic == OffsetsTopic {
			res.Err = protocol.ErrPolicyViolation // its group state is rebuilt from the whole log
			continue
		}
		ss := r.p.waitServing(ctx, leaderSettle)
		if ss.ready && b.cfg.LinearizableReads {
			// The bounds checked and the low watermark answered below are
			// reads: confirm leadership first, as ListOffsets does.
			var ok bool
			ss, ok = r.p.confirmRead(ctx, ss.term)
			ss.ready = ok
		}
		if !ss.ready {
			res.Err = protocol.ErrNotLeaderOrFollower
			continue
		}
		off := dr.Offset
		if off == -1 {
			off = ss.hwm
		}
		if off < 0 || off > ss.hwm {
			res.Err = protocol.ErrOffsetOutOfRange
			continue
		}
		if off <= ss.startOffset {
			res.LowWatermark = ss.startOffset
			continue
		}
		res.LowWatermark, res.Err = b.truncate(ctx, r, off)
	}
	return out
}

// retentionLoop applies retention.ms and retention.bytes on the partitions
// this broker leads.
func (b *Broker) retentionLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.enforceRetention(time.Now())
	}
}

func (b *Broker) enforceRetention(now time.Time) {
	view, _ := b.meta.current()
	b.mu.RLock()
	var todo []*replica
	var topics []*topicMeta
	for name, rs := range b.byName {
		t := view.Topics[name]
		if t == nil || name == OffsetsTopic {
			continue
		}
		for _, r := range rs {
			if r != nil {
				todo = append(todo, r)
				topics = append(topics, t)
			}
		}
	}
	b.mu.RUnlock()
	for i, r := range todo {
		ss := r.p.serving()
		if !ss.ready {
			continue
		}
		ms := topicConfigInt(topics[i], "retention.ms", 604800000)
		bytes := topicConfigInt(topics[i], "retention.bytes", -1)
		off := r.p.retentionStart(now, ms, bytes)
		if off <= ss.startOffset {
			continue
		}
		if _, code := b.truncate(b.ctx, r, off); code != protocol.ErrNone && b.ctx.Err() == nil {
			b.log.Warn("retention", "topic", r.p.topic, "partition", r.p.index, "offset", off, "code", code)
		}
	}
}

// retentionStart is the log start offset that retention asks for: every
// batch whose newest record is older than ms, and the oldest batches while
// the rest exceed bytes, are dropped (whole batches: an offset below the
// result is never half kept). -1 disables either limit.
func (p *partition) retentionStart(now time.Time, ms, bytes int64) int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	bs := p.st.batches
	first := sort.Search(len(bs), func(i int) bool { return bs[i].lastOffset >= p.st.startOffset })
	start := p.st.startOffset
	if ms >= 0 {
		cutoff := now.UnixMilli() - ms
		i := first
		for i < len(bs) && bs[i].maxTS < cutoff {
			i++
		}
		if i == len(bs) {
			start = max(start, p.st.nextOffset)
		} else {
			start = max(start, bs[i].baseOffset)
		}
	}
	if bytes >= 0 {
		var size int64
		keep := len(bs)
		for keep > first && size+int64(bs[keep-1].length) <= bytes {
			size += int64(bs[keep-1].length)
			keep--
		}
		if keep == len(bs) {
			start = max(start, p.st.nextOffset)
		} else {
			start = max(start, bs[keep].baseOffset)
		}
	}
	return start
}

func topicConfigInt(t *topicMeta, key string, def int64) int64 {
	if v, ok := t.Configs[key]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

// AlterConfigs implements protocol.AdminHost: a topic's overrides become
// exactly the given set.
func (b *Broker) AlterConfigs(ctx context.Context, req []protocol.AlterConfigsResource, validateOnly bool) []protocol.ConfigResult {
	if out, ok := b.forwardConfigs(ctx, len(req), func(f Forwarder, addr string) ([]protocol.ConfigResult, error) {
		return f.AlterConfigs(ctx, addr, req, validateOnly)
	}); ok {
		return out
	}
	out := make([]protocol.ConfigResult, len(req))
	for i, rr := range req {
		set := map[string]string{}
		for k, v := range rr.Configs {
			if v != nil {
				set[k] = *v
			}
		}
		out[i] = b.setTopicConfigs(ctx, rr.Type, rr.Name, func(map[string]string) (map[string]string, error) { return set, nil }, validateOnly)
	}
	return out
}

// IncrementalAlterConfigs implements protocol.AdminHost.
func (b *Broker) IncrementalAlterConfigs(ctx context.Context, req []protocol.IncrementalAlterConfigsResource, validateOnly bool) []protocol.ConfigResult {
	if out, ok := b.forwardConfigs(ctx, len(req), func(f Forwarder, addr string) ([]protocol.ConfigResult, error) {
		return f.IncrementalAlterConfigs(ctx, addr, req, validateOnly)
	}); ok {
		return out
	}
	out := make([]protocol.ConfigResult, len(req))
	for i, rr := range req {
		out[i] = b.setTopicConfigs(ctx, rr.Type, rr.Name, func(cur map[string]string) (map[string]string, error) {
			next := maps.Clone(cur)
			if next == nil {
				next = map[string]string{}
			}
			for _, op := range rr.Ops {
				switch op.Op {
				case protocol.ConfigOpSet:
					if op.Value == nil {
						return nil, fmt.Errorf("config %s: SET needs a value", op.Name)
					}
					next[op.Name] = *op.Value
				case protocol.ConfigOpDelete:
					delete(next, op.Name)
				case protocol.ConfigOpAppend, protocol.ConfigOpSubtract:
					// Only list-valued configs take these; none of the
					// supported topic configs is a list.
					return nil, fmt.Errorf("config %s is not a list: APPEND and SUBTRACT do not apply", op.Name)
				default:
					return nil, fmt.Errorf("config %s: unknown operation %d", op.Name, op.Op)
				}
			}
			return next, nil
		}, validateOnly)
	}
	return out
}

// forwardConfigs sends a config change to the controller when this broker
// is not it: the controller's metadata is the authority (this broker's view
// may not have the topic yet). ok is false when this broker is the
// controller, or no controller is known (it then answers itself).
func (b *Broker) forwardConfigs(ctx context.Context, n int, send func(Forwarder, string) ([]protocol.ConfigResult, error)) ([]protocol.ConfigResult, bool) {
	leader, leaderID := b.metaLeader()
	if leader || leaderID == 0 {
		return nil, false
	}
	addr, fwd := b.controllerAddr(leaderID), b.forwarder()
	if addr == "" || fwd == nil {
		return nil, false
	}
	out, err := send(fwd, addr)
	if err != nil || len(out) != n {
		out = make([]protocol.ConfigResult, n)
		for i := range out {
			out[i].Err, out[i].ErrMsg = protocol.ErrNotController, fmt.Sprintf("forwarding to the controller: %v", err)
		}
	}
	return out, true
}

// setTopicConfigs validates the overrides that change makes of a topic's
// current ones and, unless validateOnly, commits them in the metadata group.
func (b *Broker) setTopicConfigs(ctx context.Context, typ int8, name string, change func(map[string]string) (map[string]string, error), validateOnly bool) protocol.ConfigResult {
	res := protocol.ConfigResult{Type: typ, Name: name}
	switch typ {
	case 2:
	case 4:
		res.Err, res.ErrMsg = protocol.ErrInvalidRequest, "broker configs are static: set them in the configuration file"
		return res
	default:
		res.Err, res.ErrMsg = protocol.ErrInvalidRequest, fmt.Sprintf("config resource type %d is not supported", typ)
		return res
	}
	view, _ := b.meta.current()
	t := view.Topics[name]
	if t == nil {
		res.Err, res.ErrMsg = protocol.ErrUnknownTopicOrPartition, fmt.Sprintf("topic %q does not exist", name)
		return res
	}
	next, err := change(t.Configs)
	if err != nil {
		res.Err, res.ErrMsg = protocol.ErrInvalidConfig, err.Error()
		return res
	}
	if code, err := validateTopicConfigs(next); err != nil {
		res.Err, res.ErrMsg = code, err.Error()
		return res
	}
	if validateOnly {
		return res
	}
	if leader, _ := b.metaLeader(); !leader {
		res.Err, res.ErrMsg = protocol.ErrNotController, "this broker is not the controller"
		return res
	}
	res.Err, res.ErrMsg = b.proposeMeta(ctx, metaCmd{Op: "alter_configs", Topic: name, Configs: next})
	return res
}
