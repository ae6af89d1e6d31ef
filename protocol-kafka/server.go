package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/protocol"
)

// Type is the component type name of the Kafka protocol server.
const Type component.Type = "kafka"

// NewFactory returns the factory of the Kafka protocol server. Its config
// is a *Config.
func NewFactory() protocol.Factory {
	return protocol.NewFactory(Type, func() component.Config { return DefaultConfig() }, create)
}

func create(_ context.Context, set component.Settings, cfg component.Config, host protocol.Host) (protocol.Server, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return nil, fmt.Errorf("kafka: config is %T, want *kafka.Config", cfg)
	}
	if host == nil {
		return nil, fmt.Errorf("kafka: nil Host")
	}
	return Listen(set.WithDefaults(), c, host)
}

// Server serves the Kafka protocol on one listener. Each accepted
// connection is served by its own goroutines (see conn); all are stopped by
// Shutdown.
type Server struct {
	cfg     Config
	host    protocol.Host
	groups  protocol.GroupHost // the Host's group capability, nil if it has none
	admin   protocol.AdminHost // the Host's admin capability, nil if it has none
	log     *slog.Logger
	ln      net.Listener
	tel     *telemetry
	ids     *topicIDs
	ctx     context.Context // canceled by Shutdown: in-flight Host calls see it
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the accept loop and every connection
	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
}

var _ protocol.Server = (*Server)(nil)

// Listen validates cfg, starts listening on cfg.Listen and serves until
// Shutdown. Most callers go through NewFactory instead.
func Listen(set component.Settings, cfg *Config, host protocol.Host) (*Server, error) {
	s, err := newServer(set, cfg, host)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("kafka: listen: %w", err)
	}
	s.ln = ln
	s.log.Info("listening", "addr", ln.Addr().String())
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// newServer builds a Server without a listener; connections are handed
// to it by accept (or by tests, through serveConn).
func newServer(set component.Settings, cfg *Config, host protocol.Host) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set = set.WithDefaults()
	tel, err := newTelemetry(set)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	groups, _ := host.(protocol.GroupHost)
	admin, _ := host.(protocol.AdminHost)
	return &Server{
		cfg:    *cfg,
		host:   host,
		groups: groups,
		admin:  admin,
		log:    set.Logger.With("component", "kafka"),
		tel:    tel,
		ids:    newTopicIDs(host),
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*conn]struct{}),
	}, nil
}

// Addr is the address the server listens on (with the real port when the
// config asked for port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting, cancels the context of in-flight requests,
// closes every connection and waits for their goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if !already {
		if s.ln != nil {
			_ = s.ln.Close()
		}
		s.cancel()
		for _, c := range conns {
			c.abort()
		}
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: shutdown: %w", ctx.Err())
	}
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if !closing {
				s.log.Error("accept failed, listener stopped", "err", err)
			}
			return
		}
		s.mu.Lock()
		full := s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections
		s.mu.Unlock()
		if full {
			s.log.Warn("too many connections, closing new one", "remote", nc.RemoteAddr().String(), "max_connections", s.cfg.MaxConnections)
			s.tel.connError("max_connections")
			_ = nc.Close()
			continue
		}
		if !s.serveConn(nc) {
			return
		}
	}
}

// serveConn starts serving an accepted connection; it reports false (and
// closes nc) when the server is shutting down.
func (s *Server) serveConn(nc net.Conn) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = nc.Close()
		return false
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.tel.connOpened()
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.tel.connClosed()
	}()
	return true
}
