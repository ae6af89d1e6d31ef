package kafka

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults, chosen as Kafka's where Kafka has one.
const (
	// DefaultListen is the default listen address.
	DefaultListen = "127.0.0.1:9092"
	// DefaultMaxRequestBytes is Kafka's socket.request.max.bytes default.
	DefaultMaxRequestBytes = 100 << 20
	// DefaultIdleTimeout is Kafka's connections.max.idle.ms default.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxInFlight bounds the requests of one connection that are
	// being handled or waiting for their response to be written.
	DefaultMaxInFlight = 16
)

// Config configures the Kafka server. The address clients are told to
// connect to (advertised listener) is not here: it is the broker's, given
// by Host.Cluster.
type Config struct {
	// Listen is the TCP address to listen on ("host:port"; port 0 picks
	// a free port, see Server.Addr).
	Listen string `koanf:"listen"`
	// MaxRequestBytes is the largest request frame accepted (Kafka's
	// socket.request.max.bytes). A larger frame is refused before its
	// body is read or allocated, and the connection is closed.
	MaxRequestBytes int32 `koanf:"socket_request_max_bytes"`
	// MaxConnections caps concurrent client connections; 0 is unlimited.
	// Connections above the cap are closed right after accept.
	MaxConnections int `koanf:"max_connections"`
	// IdleTimeout closes a connection that sends no request for this
	// long (Kafka's connections.max.idle.ms); 0 disables it.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// MaxInFlight bounds the pipelined requests of one connection that
	// are handled concurrently or wait for their response to be written.
	// When it is reached the server stops reading from the connection.
	MaxInFlight int `koanf:"max_inflight_per_connection"`

	_ struct{}
}

// DefaultConfig returns the default configuration.
func DefaultConfig() *Config {
	return &Config{
		Listen:          DefaultListen,
		MaxRequestBytes: DefaultMaxRequestBytes,
		IdleTimeout:     DefaultIdleTimeout,
		MaxInFlight:     DefaultMaxInFlight,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("kafka: listen %q: %w", c.Listen, err))
	}
	// The smallest request is a header: key, version, correlation id and
	// a client id length.
	if c.MaxRequestBytes < minRequestBytes {
		errs = append(errs, fmt.Errorf("kafka: socket_request_max_bytes %d is below the %d-byte request header", c.MaxRequestBytes, minRequestBytes))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("kafka: max_connections %d is negative", c.MaxConnections))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("kafka: idle_timeout %s is negative", c.IdleTimeout))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("kafka: max_inflight_per_connection %d must be at least 1", c.MaxInFlight))
	}
	return errors.Join(errs...)
}
