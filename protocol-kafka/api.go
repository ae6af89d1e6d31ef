package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler answers one decoded request. A nil response sends nothing (acks=0
// produce); an error closes the connection (after the responses to earlier
// requests are written). The request's version is already checked against
// the registered range, and the response's version and throttle are set by
// the caller.
type handler func(ctx context.Context, r *request) (kmsg.Response, error)

// api is one registered API key: the versions it fully encodes.
type api struct {
	key      int16
	name     string
	min, max int16
	// ordered requests reach the Host in request order per connection
	// (each waits for the previous ordered request's Host calls).
	ordered bool
	// group APIs are served (and advertised) only when the Host
	// implements protocol.GroupHost.
	group bool
	// admin APIs are served (and advertised) only when the Host
	// implements protocol.AdminHost.
	admin  bool
	handle handler
}

var apis [kmsg.MaxKey + 1]*api

// register is called from each API file's init. ApiVersions advertises
// exactly the registered ranges.
func register(key, minVersion, maxVersion int16, ordered bool, h handler) {
	if key < 0 || int(key) >= len(apis) || apis[key] != nil || minVersion > maxVersion {
		panic(fmt.Sprintf("kafka: bad registration of API key %d", key))
	}
	if req := kmsg.RequestForKey(key); req == nil || req.MaxVersion() < maxVersion {
		panic(fmt.Sprintf("kafka: kmsg cannot encode API key %d v%d", key, maxVersion))
	}
	apis[key] = &api{key: key, name: kmsg.NameForKey(key), min: minVersion, max: maxVersion, ordered: ordered, handle: h}
}

// registerGroup registers a group API: offered only by a server whose
// Host is a protocol.GroupHost.
func registerGroup(key, minVersion, maxVersion int16, ordered bool, h handler) {
	register(key, minVersion, maxVersion, ordered, h)
	apis[key].group = true
}

// registerAdmin registers an admin API: offered only by a server whose
// Host is a protocol.AdminHost.
func registerAdmin(key, minVersion, maxVersion int16, ordered bool, h handler) {
	register(key, minVersion, maxVersion, ordered, h)
	apis[key].admin = true
}

// lookup returns the API for key this server offers, or nil.
func (s *Server) lookup(key int16) *api {
	if key < 0 || int(key) >= len(apis) {
		return nil
	}
	a := apis[key]
	if a != nil && (a.group && s.groups == nil || a.admin && s.admin == nil) {
		return nil
	}
	return a
}
