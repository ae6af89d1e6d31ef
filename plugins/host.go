package plugins

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/config"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/plugins/sdk"
)

// Host runs a broker's components as plugin subprocesses; it implements
// config.PluginHost.
type Host struct {
	// Builtin returns the command that runs the built-in component of this
	// kind and type as a plugin (chronik re-executing itself as
	// `chronik plugin serve <kind> <type>`), and false for a type that is
	// not built in.
	Builtin func(kind string, t component.Type) (Command, bool)

	_ struct{}
}

var _ config.PluginHost = (*Host)(nil)

// ExecutableName is the name an external plugin of kind and type has in
// plugins.dir: chronik-storage-pebble.
func ExecutableName(kind string, t component.Type) string {
	return "chronik-" + kind + "-" + string(t)
}

// Resolve says which executable runs the component: plugin.path if set,
// else the built-in, else chronik-<kind>-<type> in plugins.dir.
func (h *Host) Resolve(kind string, t component.Type, pl config.Plugin, dir string) (Command, error) {
	var cmd Command
	switch {
	case pl.Path != "":
		p, err := absPath(pl.Path)
		if err != nil {
			return cmd, fmt.Errorf("%s.plugin.path: %w", kind, err)
		}
		cmd.Path = p
	default:
		if h.Builtin != nil {
			if c, ok := h.Builtin(kind, t); ok {
				cmd = c
				break
			}
		}
		if dir == "" {
			return cmd, fmt.Errorf("%s type %q is not built in; set %s.plugin.path, or plugins.dir to a directory holding %s", kind, t, kind, ExecutableName(kind, t))
		}
		p, err := absPath(filepath.Join(dir, ExecutableName(kind, t)))
		if err != nil {
			return cmd, fmt.Errorf("%s type %q is not built in and plugins.dir has no %s: %w", kind, t, ExecutableName(kind, t), err)
		}
		cmd.Path = p
	}
	cmd.SHA256, cmd.AutoMTLS = pl.SHA256, pl.AutoMTLS
	return cmd, nil
}

func (h *Host) storageOptions(c *config.Config) (StorageOptions, error) {
	cmd, err := h.Resolve("storage", c.Storage.Type, c.Storage.Plugin, c.Plugins.Dir)
	if err != nil {
		return StorageOptions{}, err
	}
	return StorageOptions{Type: c.Storage.Type, Command: cmd, Config: c.Storage.Raw}, nil
}

// OpenStorage starts the storage plugin c selects and opens its store.
func (h *Host) OpenStorage(ctx context.Context, set component.Settings, c *config.Config) (storage.Store, error) {
	o, err := h.storageOptions(c)
	if err != nil {
		return nil, err
	}
	o.DataDir, o.Logger = set.DataDir, set.Logger
	start := time.Now()
	s, err := OpenStorage(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.Logger != nil {
		o.Logger.Info("storage plugin started", "type", o.Type, "path", o.Command.Path, "pid", s.Pid(), "protocol", sdk.StorageProtocolVersion, "took", time.Since(start).Round(time.Millisecond))
	}
	return s, nil
}

// CheckStorage starts the storage plugin only to validate its section.
func (h *Host) CheckStorage(ctx context.Context, c *config.Config) error {
	o, err := h.storageOptions(c)
	if err != nil {
		return err
	}
	return ValidateStorage(ctx, o)
}

func (h *Host) consensusOptions(c *config.Config) (ConsensusOptions, error) {
	cmd, err := h.Resolve("consensus", c.Consensus.Type, c.Consensus.Plugin, c.Plugins.Dir)
	if err != nil {
		return ConsensusOptions{}, err
	}
	return ConsensusOptions{Type: c.Consensus.Type, Command: cmd, Config: c.Consensus.Raw}, nil
}

// StartConsensus starts the consensus plugin c selects and creates its
// engine over p.Store.
func (h *Host) StartConsensus(ctx context.Context, set component.Settings, c *config.Config, p consensus.Params) (consensus.Engine, error) {
	o, err := h.consensusOptions(c)
	if err != nil {
		return nil, err
	}
	o.DataDir, o.Logger = set.DataDir, set.Logger
	start := time.Now()
	e, err := StartConsensus(ctx, o, p)
	if err != nil {
		return nil, err
	}
	if o.Logger != nil {
		o.Logger.Info("consensus plugin started", "type", o.Type, "path", o.Command.Path, "pid", e.Pid(), "protocol", sdk.ConsensusProtocolVersion, "took", time.Since(start).Round(time.Millisecond))
	}
	return e, nil
}

// CheckConsensus starts the consensus plugin only to validate its section.
func (h *Host) CheckConsensus(ctx context.Context, c *config.Config) error {
	o, err := h.consensusOptions(c)
	if err != nil {
		return err
	}
	return ValidateConsensus(ctx, o)
}

// Found is a plugin executable found in a directory.
type Found struct {
	Kind string
	Type component.Type
	Path string
}

// Discover lists the plugin executables named chronik-<kind>-<type> in dir.
func Discover(dir string) ([]Found, error) {
	if dir == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "chronik-")
		if !ok || e.IsDir() {
			continue
		}
		kind, t, ok := strings.Cut(rest, "-")
		if !ok || component.Type(t).Validate() != nil {
			continue
		}
		out = append(out, Found{Kind: kind, Type: component.Type(t), Path: filepath.Join(dir, e.Name())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// ProbeStorage starts a storage plugin and returns the protocol version it
// speaks (an error if it is not this broker's).
func ProbeStorage(ctx context.Context, cmd Command) (int, error) {
	return Probe(ctx, "storage", cmd)
}

// Probe starts a plugin of kind (storage, consensus) and returns the
// protocol version it speaks (an error if it is not this broker's).
func Probe(ctx context.Context, kind string, cmd Command) (int, error) {
	var ps plugin.PluginSet
	hs := sdk.StorageHandshake
	switch kind {
	case "storage":
		ps = plugin.PluginSet{sdk.StoragePluginName: &sdk.StoragePlugin{}}
	case "consensus":
		ps, hs = plugin.PluginSet{sdk.ConsensusPluginName: &sdk.ConsensusPlugin{}}, sdk.ConsensusHandshake
	default:
		return 0, fmt.Errorf("unknown plugin kind %q", kind)
	}
	p, _, err := start(ctx, kind+" plugin", cmd, hs, ps, nil)
	if err != nil {
		var v int
		if _, serr := fmt.Sscanf(afterString(err.Error(), "Plugin version: "), "%d", &v); serr == nil {
			return v, err
		}
		return 0, err
	}
	defer p.Stop()
	return p.client.NegotiatedVersion(), nil
}

func afterString(s, sep string) string {
	_, after, _ := strings.Cut(s, sep)
	return after
}
