package kafka

import (
	"context"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID: v0-5.
//
// Passed to Host.InitProducerID, which allocates ids for idempotent
// producers (transactional ids are refused by the Host today).
//
// Version notes: v1 throttle; v2 flexible; v3 ProducerID and
// ProducerEpoch in the request (an existing producer bumping its epoch);
// v4 and v5 change only error codes the Host chooses (v4
// PRODUCER_FENCED, v5 KIP-890 epoch bumps).

func init() { register(22, 0, 5, true, handleInitProducerID) }

func handleInitProducerID(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	hreq := protocol.InitProducerIDRequest{
		TransactionalID: req.TransactionalID,
		ProducerID:      -1,
		ProducerEpoch:   -1,
	}
	if req.Version >= 3 {
		hreq.ProducerID, hreq.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	}
	res := r.c.s.host.InitProducerID(ctx, hreq)
	resp.ErrorCode = int16(res.Err)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if res.Err == protocol.ErrNone {
		resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
	}
	return resp, nil
}
