package etcd

import (
	"testing"
	"time"
)

func TestStallClock(t *testing.T) {
	var s stallClock
	const d = 30 * time.Millisecond
	later := func() time.Time { return time.Now().Add(time.Hour) }
	if s.stalled(later(), d) {
		t.Fatal("stalled with no write in flight")
	}
	s.begin()
	if s.stalled(time.Now(), time.Hour) {
		t.Fatal("stalled as soon as a write starts")
	}
	if !s.stalled(later(), d) {
		t.Fatal("a write in flight for an hour is not a stall")
	}
	s.begin() // a second write does not restart the clock
	s.end()   // but a completion does
	if s.stalled(time.Now(), time.Hour) || !s.stalled(later(), d) {
		t.Fatal("one write still in flight after a completion: the clock restarts from it")
	}
	s.end()
	if s.stalled(later(), d) {
		t.Fatal("stalled with no write in flight")
	}
}
