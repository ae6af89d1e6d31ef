package hashicorp

import (
	"context"
	"sync"

	"github.com/chronik-go/chronik/core/storage"
)

// writer coalesces the synced writes of every group of the engine (log
// appends from StoreLogs, state blobs from the StableStore and snapshots)
// into shared Store.Write calls: while Writes (and their fsyncs) are in
// progress, the writes that arrive queue up and go together in the next
// (up to maxInflightWrites batches at once). Writes of one group keep their
// order: a batch holds at most one write per group, and a group's next
// write waits until its previous one is done, so that a store never sees
// two GroupWrites of a group in one call or in two concurrent ones.
type writer struct {
	store storage.Store
	wake  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	queue    []*writeReq
	busy     map[storage.GroupID]bool // groups with a write in flight
	inflight int                      // batches in flight
	closed   bool
}

type writeReq struct {
	w    storage.GroupWrite
	err  error
	done chan struct{}
}

func newWriter(st storage.Store) *writer {
	w := &writer{store: st, wake: make(chan struct{}, 1), done: make(chan struct{}), busy: map[storage.GroupID]bool{}}
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
		w.dispatch()
		select {
		case <-w.wake:
		case <-w.done:
			// Write what is queued; the batches in flight end on their own
			// (close waits for them).
			for {
				w.mu.Lock()
				queued := len(w.queue)
				w.mu.Unlock()
				if queued == 0 {
					return
				}
				w.dispatch()
				<-w.wake // a batch ended: room for the next
			}
		}
	}
}

// maxInflightWrites is how many batches may be in flight at once. More
// than one keeps the store busy while a batch's answer travels back (a
// round trip to the broker when the engine runs as a plugin) and while
// the library handles it; a group is in at most one of them.
const maxInflightWrites = 4

// dispatch starts batches while there is room: each takes the first
// queued write of every group that has none in flight, in queue order;
// the writes it leaves keep their order.
func (w *writer) dispatch() {
	for {
		w.mu.Lock()
		if w.inflight >= maxInflightWrites || len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
		taken := make(map[storage.GroupID]bool, len(w.queue))
		var batch, rest []*writeReq
		for _, r := range w.queue {
			g := r.w.Group
			if taken[g] || w.busy[g] {
				taken[g] = true
				rest = append(rest, r)
				continue
			}
			taken[g] = true
			batch = append(batch, r)
		}
		if len(batch) == 0 {
			w.mu.Unlock()
			return
		}
		w.queue = rest
		for _, r := range batch {
			w.busy[r.w.Group] = true
		}
		w.inflight++
		w.mu.Unlock()
		w.wg.Go(func() {
			w.writeBatch(batch)
			w.mu.Lock()
			for _, r := range batch {
				delete(w.busy, r.w.Group)
			}
			w.inflight--
			w.mu.Unlock()
			select {
			case w.wake <- struct{}{}:
			default:
			}
		})
	}
}

// writeBatch writes a batch (at most one write per group) with one sync.
func (w *writer) writeBatch(batch []*writeReq) {
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
		return
	}
	for _, r := range batch {
		r.err = err
		close(r.done)
	}
}
