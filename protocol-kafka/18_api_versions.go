package kafka

import (
	"context"
	"regexp"

	"github.com/chronik-go/chronik/core/protocol"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-4.
//
// Advertises exactly the registered key/version ranges. A version above 4
// cannot be parsed; it is answered (in conn.dispatch) with a v0 response,
// UNSUPPORTED_VERSION and the supported ranges (KIP-511), and the client
// retries within them. v3+ checks the client software name and version
// against Kafka's pattern (INVALID_REQUEST). v5 (KIP-1242: the client names
// the cluster and node it expects) is not offered: the Host does not tell
// this broker's node id.
//
// Version notes: v1 throttle; v3 flexible, client software, features (none
// advertised).

const apiVersionsKey = 18

func init() { register(apiVersionsKey, 0, 4, false, handleApiVersions) }

// softwareRE is Kafka's pattern for ClientSoftwareName and -Version.
var softwareRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func handleApiVersions(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!softwareRE.MatchString(req.ClientSoftwareName) || !softwareRE.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = int16(protocol.ErrInvalidRequest)
		return resp, nil
	}
	resp.ApiKeys = supportedKeys(r.c.s)
	return resp, nil
}

// apiVersionsUnsupported is the KIP-511 answer to an ApiVersions version
// we do not know: encoded as v0, with every supported range.
func apiVersionsUnsupported(s *Server) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = int16(protocol.ErrUnsupportedVersion)
	resp.ApiKeys = supportedKeys(s)
	return resp
}

func supportedKeys(s *Server) []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for key := range apis {
		a := s.lookup(int16(key))
		if a == nil {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		keys = append(keys, k)
	}
	return keys
}
