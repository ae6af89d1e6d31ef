package etcd

import "sync"

// scheduler is CockroachDB's raft scheduler in miniature: a run queue of
// groups with work and a fixed pool of workers. Per-group flags (guarded by
// the scheduler's mutex) keep a group queued at most once and held by at
// most one worker; work that arrives while a worker holds the group marks it
// to be queued again when the worker lets go.
type scheduler struct {
	mu      sync.Mutex
	cond    sync.Cond
	queue   []*group
	stopped bool
	batch   int
	wg      sync.WaitGroup
}

// schedState is a group's place in the scheduler, guarded by scheduler.mu.
type schedState struct {
	queued     bool // in the run queue
	processing bool // held by a worker
	again      bool // work arrived while processing
}

// held is the batch a worker holds. process may let a group go before the
// batch is done (release); the worker lets go of the rest afterwards.
type held struct {
	s  *scheduler
	gs []*group
}

// release lets go of g, which must be in h and not released yet: from now
// on another worker may take it, so the caller must not touch it again.
func (h *held) release(g *group) {
	for i, x := range h.gs {
		if x == g {
			h.gs[i] = nil
			h.s.mu.Lock()
			h.s.letGo(g)
			h.s.mu.Unlock()
			return
		}
	}
}

// letGo ends a worker's hold on g and requeues it if work arrived
// meanwhile. The caller holds s.mu.
func (s *scheduler) letGo(g *group) {
	g.sched.processing = false
	if g.sched.again {
		g.sched.again = false
		g.sched.queued = true
		s.queue = append(s.queue, g)
		s.cond.Signal()
	}
}

func newScheduler(workers, batch int, process func(*held)) *scheduler {
	s := &scheduler{batch: batch}
	s.cond.L = &s.mu
	for range workers {
		s.wg.Go(func() { s.work(process) })
	}
	return s
}

// enqueue schedules g; cheap when g is already queued.
func (s *scheduler) enqueue(g *group) {
	s.mu.Lock()
	switch {
	case s.stopped:
	case g.sched.processing:
		g.sched.again = true
	case !g.sched.queued:
		g.sched.queued = true
		s.queue = append(s.queue, g)
		s.cond.Signal()
	}
	s.mu.Unlock()
}

func (s *scheduler) work(process func(*held)) {
	h := &held{s: s}
	var batch []*group
	s.mu.Lock()
	for {
		for len(s.queue) == 0 && !s.stopped {
			s.cond.Wait()
		}
		if s.stopped {
			s.mu.Unlock()
			return
		}
		n := min(len(s.queue), s.batch)
		batch = append(batch[:0], s.queue[:n]...)
		s.queue = append(s.queue[:0], s.queue[n:]...)
		for _, g := range batch {
			g.sched.queued = false
			g.sched.processing = true
		}
		if len(s.queue) > 0 {
			s.cond.Signal()
		}
		s.mu.Unlock()

		h.gs = batch
		process(h)

		s.mu.Lock()
		for i, g := range batch {
			if g != nil {
				s.letGo(g)
			}
			batch[i] = nil
		}
	}
}

// stop ends the workers once they finish their current batch.
func (s *scheduler) stop() {
	s.mu.Lock()
	s.stopped = true
	s.queue = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
}
