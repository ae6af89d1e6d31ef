package hashicorp

import (
	"context"
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
	wake  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	queue  []*writeReq
	closed bool
}

type writeReq struct {
	w    storage.GroupWrite
	err  error
	done chan struct{}
}

func newWriter(st storage.Store) *writer {
	w := &writer{store: st, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.wg.Go(w.run)
	return w
}

// write queues gw and waits until it is durable.
func (w *writer) write(gw storage.GroupWrite) error {
	r := &writeReq{w: gw, done: make(chan struct{})}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return storage.ErrClosed
	}
	w.queue = append(w.queue, r)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-r.done
	return r.err
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
	for i, r := range batch {
		ws[i] = r.w
	}
	err := w.store.Write(context.Background(), ws, true)
	if err != nil && storage.CodeOf(err) == storage.CodeInvalid && len(batch) > 1 {
		// One bad write must not fail the others: write them one by one.
		for _, r := range batch {
			r.err = w.store.Write(context.Background(), []storage.GroupWrite{r.w}, true)
			close(r.done)
		}
		return rest
	}
	for _, r := range batch {
		r.err = err
		close(r.done)
	}
	return rest
}
