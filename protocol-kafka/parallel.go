package kafka

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// maxFanOut bounds the goroutines one request starts to call the Host for
// its partitions at once.
const maxFanOut = 128

// parallel calls fn(i) for i in [0, n) concurrently, at most maxFanOut at a
// time, and waits for all. A panic in fn is logged and reported to fail(i)
// instead of crashing the process (the handler's own recover does not see
// other goroutines).
func (r *request) parallel(n int, fn func(i int), fail func(i int)) {
	if n == 1 {
		r.safely(0, fn, fail)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, min(n, maxFanOut))
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() {
				<-sem
				wg.Done()
			}()
			r.safely(i, fn, fail)
		}()
	}
	wg.Wait()
}

func (r *request) safely(i int, fn func(int), fail func(int)) {
	defer func() {
		if v := recover(); v != nil {
			r.c.log.Error("panic in Host call", "api", r.kreq.Key(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			fail(i)
		}
	}()
	fn(i)
}
