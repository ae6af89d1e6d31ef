package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/chronik-go/chronik/core/storage"
)

// NodeStateGroup is the store group that holds this broker's own durable
// state (not replicated): the producer id block counter.
const NodeStateGroup storage.GroupID = 0

// pidBlock is how many producer ids one durable write reserves.
const pidBlock = 1 << 12

// pidAllocator hands out producer ids unique across the cluster and across
// restarts without a round trip to the metadata group: an id is
// node id << 40 | a per-node counter, and the counter's reserved ceiling is
// made durable before any id below it is handed out.
type pidAllocator struct {
	store storage.Store
	node  int64

	mu      sync.Mutex
	next    int64 // next counter value to hand out
	ceiling int64 // counter values below this are reserved durably
}

type nodeState struct {
	PIDCeiling int64 `json:"pid_ceiling"`
}

func openPIDAllocator(store storage.Store, node int32) (*pidAllocator, error) {
	if node <= 0 || int64(node) >= 1<<22 {
		return nil, fmt.Errorf("broker: node id %d out of range for producer ids", node)
	}
	a := &pidAllocator{store: store, node: int64(node)}
	log, err := store.Log(NodeStateGroup)
	if err != nil {
		return nil, err
	}
	raw, err := log.State()
	if err != nil {
		return nil, err
	}
	if raw != nil {
		var st nodeState
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("broker: node state: %w", err)
		}
		a.next, a.ceiling = st.PIDCeiling, st.PIDCeiling
	}
	return a, nil
}

func (a *pidAllocator) allocate(ctx context.Context) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.ceiling {
		c := a.ceiling + pidBlock
		if c >= 1<<40 {
			return 0, fmt.Errorf("broker: producer ids of node %d exhausted", a.node)
		}
		raw, _ := json.Marshal(nodeState{PIDCeiling: c})
		if err := a.store.Write(ctx, []storage.GroupWrite{{Group: NodeStateGroup, State: raw}}, true); err != nil {
			return 0, err
		}
		a.ceiling = c
	}
	id := a.node<<40 | a.next
	a.next++
	return id, nil
}
