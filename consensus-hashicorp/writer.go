package hashicorp

import (
	"context"
	"log/slog"
	"sync"

	"github.com/chronik-go/chronik/core/storage"
)

// writer coalesces the synced writes of every group of the engine (log
// appends from StoreLogs, state blobs from the StableStore and snapshots)
// into shared Store.Write calls: while one Write (and its fsync) is in
// progress, the writes that arrive queue up and go together in the next.
// Writes of one group keep their order; a batch holds at most one write per
// group, so that a store never sees two GroupWrites of a group in one call.
type writer struct {
	store storage.Store
	log   *slog.Logger
	wake  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	queue  []*writeReq
	closed bool
}

type writeReq struct {
	w    storage.GroupWrite
	sync bool // the batch holding it is synced
	err  error
	done chan struct{} // nil: nobody waits (writeAsync)
}

func newWriter(st storage.Store, log *slog.Logger) *writer {
	w := &writer{store: st, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.wg.Go(w.run)
	return w
}

// write queues gw and waits until it is durable.
func (w *writer) write(gw storage.GroupWrite) error {
	r := &writeReq{w: gw, sync: true, done: make(chan struct{})}
	if !w.enqueue(r) {
		return storage.ErrClosed
	}
	<-r.done
	return r.err
}

// writeAsync queues gw without waiting for it and without asking for an
// fsync of its own: it reaches the store before any later write of its
// group, and is durable once such a synced write is. An error is logged
// (the store fails the later writes too).
func (w *writer) writeAsync(gw storage.GroupWrite) {
	w.enqueue(&writeReq{w: gw})
}

func (w *writer) enqueue(r *writeReq) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, r)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// finish completes r with err.
func (w *writer) finish(r *writeReq, err error) {
	if r.done != nil {
		r.err = err
		close(r.done)
		return
	}
	if err != nil {
		w.log.Error("hashicorp: unsynced state write failed", "group", uint64(r.w.Group), "err", err)
	}
}

// close fails later writes and waits for the queued ones.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.done)
	w.wg.Wait()
}

func (w *writer) run() {
	for {
		select {
		case <-w.wake:
		case <-w.done:
			w.flushAll()
			return
		}
		w.flushAll()
	}
}

// flushAll writes batches until the queue is empty.
func (w *writer) flushAll() {
	for {
		w.mu.Lock()
		q := w.queue
		w.queue = nil
		w.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for len(q) > 0 {
			q = w.flush(q)
		}
	}
}

// flush writes the first write of each group in q (in queue order, up to
// a second write of a group already in the batch) and returns the rest.
func (w *writer) flush(q []*writeReq) []*writeReq {
	seen := make(map[storage.GroupID]bool, len(q))
	batch := q[:0:0]
	var rest []*writeReq
	for i, r := range q {
		if seen[r.w.Group] {
			rest = append(rest, q[i:]...)
			break
		}
		seen[r.w.Group] = true
		batch = append(batch, r)
	}
	ws := make([]storage.GroupWrite, len(batch))
	sync := false
	for i, r := range batch {
		ws[i] = r.w
		sync = sync || r.sync
	}
	err := w.store.Write(context.Background(), ws, sync)
	if err != nil && storage.CodeOf(err) == storage.CodeInvalid && len(batch) > 1 {
		// One bad write must not fail the others: write them one by one.
		for _, r := range batch {
			w.finish(r, w.store.Write(context.Background(), []storage.GroupWrite{r.w}, r.sync))
		}
		return rest
	}
	for _, r := range batch {
		w.finish(r, err)
	}
	return rest
}
