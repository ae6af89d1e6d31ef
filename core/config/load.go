package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/maps"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"

	"github.com/chronik-go/chronik/core/component"
	"github.com/chronik-go/chronik/core/consensus"
	"github.com/chronik-go/chronik/core/protocol"
	"github.com/chronik-go/chronik/core/storage"
)

// DefaultFile is the config file Load reads from Sources.Dir when
// Sources.File is empty, if it exists.
const DefaultFile = "chronik.yaml"

// Factories are the component factories a config may select, indexed by
// type name (build the maps with component.MakeMap).
type Factories struct {
	Storage   map[component.Type]storage.Factory
	Consensus map[component.Type]consensus.Factory
	Protocol  map[component.Type]protocol.Factory
	// Plugins runs components in plugin mode subprocess; nil refuses it.
	Plugins PluginHost
}

// PluginHost runs components as plugin subprocesses (package plugins
// implements it; core knows no plugin library).
type PluginHost interface {
	// OpenStorage starts the storage plugin c.Storage selects and opens
	// its store in set.DataDir with the section c.Storage.Raw.
	OpenStorage(ctx context.Context, set component.Settings, c *Config) (storage.Store, error)
	// CheckStorage starts the plugin only to have it validate the section.
	CheckStorage(ctx context.Context, c *Config) error
	// StartConsensus starts the consensus plugin c.Consensus selects and
	// creates its engine with p and the section c.Consensus.Raw.
	StartConsensus(ctx context.Context, set component.Settings, c *Config, p consensus.Params) (consensus.Engine, error)
	// CheckConsensus starts the plugin only to have it validate the
	// section.
	CheckConsensus(ctx context.Context, c *Config) error
}

// Sources are the inputs of Load besides the defaults.
type Sources struct {
	// File is the config file: .yaml, .yml or .toml. Empty means DefaultFile
	// in Dir if it exists, else no file.
	File string
	// Dir is where DefaultFile is looked for; empty means the working
	// directory.
	Dir string
	// Env is the environment as os.Environ returns it. Only CHRONIK_*
	// variables are read, and each must name a known key.
	Env []string
	// Set are key=value overrides (from the command line), applied last and
	// in order.
	Set []string

	_ struct{}
}

// section is one component section of the config.
type section struct {
	name     string
	reserved []string // the section's own keys, not the factory's
	defaults func(t component.Type) (component.Config, error)
	set      func(c *Config, cfg component.Config)
	raw      func(c *Config, m map[string]any) // sections that may run as plugins
}

func sections(f Factories) []section {
	return []section{
		{
			name:     "storage",
			reserved: []string{"type", "plugin"},
			defaults: func(t component.Type) (component.Config, error) {
				return defaultConfig("storage", f.Storage, t)
			},
			set: func(c *Config, cfg component.Config) { c.Storage.Config = cfg },
			raw: func(c *Config, m map[string]any) { c.Storage.Raw = m },
		},
		{
			name:     "consensus",
			reserved: []string{"type", "plugin"},
			defaults: func(t component.Type) (component.Config, error) {
				return defaultConfig("consensus", f.Consensus, t)
			},
			set: func(c *Config, cfg component.Config) { c.Consensus.Config = cfg },
			raw: func(c *Config, m map[string]any) { c.Consensus.Raw = m },
		},
		{
			name:     "protocol",
			reserved: []string{"type"},
			defaults: func(t component.Type) (component.Config, error) {
				return defaultConfig("protocol", f.Protocol, t)
			},
			set: func(c *Config, cfg component.Config) { c.Protocol.Config = cfg },
		},
	}
}

type factory interface {
	component.Named
	DefaultConfig() component.Config
}

func defaultConfig[F factory](kind string, m map[component.Type]F, t component.Type) (component.Config, error) {
	f, err := component.Lookup(kind, m, t)
	if err != nil {
		return nil, err
	}
	cfg := f.DefaultConfig()
	if v := reflect.ValueOf(cfg); v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("%s factory %q: %w, got %T", kind, t, errNotPointer, cfg)
	}
	return cfg, nil
}

// knownKeys is the set of valid keys.
type knownKeys struct {
	keys map[string]Field
	maps []string // keys holding maps: their sub-keys are valid too
}

func (k *knownKeys) add(fields []Field) {
	for _, f := range fields {
		k.keys[f.Key] = f
		if f.IsMap() {
			k.maps = append(k.maps, f.Key+".")
		}
	}
}

// isSection reports whether key is a path above known keys (an empty
// section in a file, such as `broker:` alone).
func (k *knownKeys) isSection(key string) bool {
	for kk := range k.keys {
		if strings.HasPrefix(kk, key+".") {
			return true
		}
	}
	return false
}

func (k *knownKeys) has(key string) bool {
	if _, ok := k.keys[key]; ok {
		return true
	}
	for _, m := range k.maps {
		if strings.HasPrefix(key, m) {
			return true
		}
	}
	return false
}

// Load reads the configuration from the defaults and src and validates it.
// Every problem found (a malformed file is reported alone) is returned in
// one *Error; a nil error means the config, with each component's Config
// set, is ready to use.
func Load(f Factories, src Sources) (*Config, error) {
	var p problems
	def := Default()
	known := &knownKeys{keys: map[string]Field{}}
	base := Fields(&def, "")
	known.add(base)

	fileName, fileMap, err := readFile(src)
	if err != nil {
		return nil, &Error{Problems: []error{err}}
	}
	fileKeys := flatKeys(fileMap)
	dropNils(fileMap)

	sets := make(map[string]any, len(src.Set))
	var setOrder []string
	for _, s := range src.Set {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			p.addf("--set %q: want key=value", s)
			continue
		}
		if _, dup := sets[k]; !dup {
			setOrder = append(setOrder, k)
		}
		sets[k] = v
	}
	env := map[string]string{}
	for _, kv := range src.Env {
		name, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) {
			env[name] = v
		}
	}

	// Pass 1: the component types, from every source but with only the
	// top-level keys known (a type is a top-level key).
	k1 := koanf.New(".")
	mustLoad(k1, flat(base))
	mustLoad(k1, fileMap)
	mustLoad(k1, envValues(env, known, nil))
	mustLoad(k1, sets)

	// The selected factories' keys, and the defaults of their sections.
	defaults := flat(base)
	secCfg := map[string]component.Config{}
	unknownType := map[string]bool{}
	opaque := map[string]bool{}
	for _, s := range sections(f) {
		t := component.Type(k1.String(s.name + ".type"))
		if s.name == "storage" && PluginMode(k1.String(s.name+".plugin.mode")) == Subprocess {
			if _, builtin := f.Storage[t]; !builtin {
				// An external plugin's keys: the plugin decodes and
				// validates them (chronik config check starts it).
				opaque[s.name] = true
				continue
			}
		}
		cfg, err := s.defaults(t)
		if err != nil {
			p.addf("%s.type: %w", s.name, err)
			unknownType[s.name] = true
			continue
		}
		fields := Fields(cfg, s.name+".")
		for _, fl := range fields {
			rest := strings.TrimPrefix(fl.Key, s.name+".")
			for _, r := range s.reserved {
				if rest == r || strings.HasPrefix(rest, r+".") {
					p.addf("%s factory %q: its key %q clashes with the section's own %s.%s", s.name, t, fl.Key, s.name, r)
				}
			}
		}
		known.add(fields)
		for k, v := range flat(fields) {
			defaults[k] = v
		}
		secCfg[s.name] = cfg
	}
	inUnknownSection := func(key string) bool {
		sec, _, _ := strings.Cut(key, ".")
		return unknownType[sec] || opaque[sec]
	}
	// The environment of an external plugin's section: CHRONIK_STORAGE_X_Y
	// sets storage.x_y (its keys are not known here, so no nesting).
	opaqueEnv := map[string]any{}

	// Unknown keys in each source.
	for _, k := range fileKeys {
		if !known.has(k) && !known.isSection(k) && !inUnknownSection(k) {
			p.addf("%s: unknown key %q%s", fileName, k, known.suggest(k))
		}
	}
	envMapped := envValues(env, known, func(name string) {
		for sec := range opaque {
			if p := EnvName(sec) + "_"; strings.HasPrefix(name, p) {
				opaqueEnv[sec+"."+strings.ToLower(strings.TrimPrefix(name, p))] = env[name]
				return
			}
		}
		for sec := range unknownType {
			if strings.HasPrefix(name, EnvName(sec)+"_") {
				return
			}
		}
		p.addf("environment variable %s: no such key%s", name, known.suggestEnv(name))
	})
	for _, k := range setOrder {
		if !known.has(k) && !inUnknownSection(k) {
			p.addf("--set %s: unknown key%s", k, known.suggest(k))
		}
	}
	p.add(envCollisions(known))

	// Pass 2: every source over the full defaults.
	k := koanf.New(".")
	mustLoad(k, defaults)
	mustLoad(k, fileMap)
	mustLoad(k, envMapped)
	mustLoad(k, opaqueEnv)
	mustLoad(k, sets)

	// Unknown keys are reported above, with suggestions; the decoder checks
	// for them again only when nothing else was found.
	errorUnused := len(p) == 0
	cfg := Default()
	if err := unmarshal(k, "", &cfg, false); err != nil {
		decodeProblems(&p, "", err)
	}
	cfg.File = fileName
	for _, s := range sections(f) {
		sub := k.Cut(s.name)
		for _, r := range s.reserved {
			sub.Delete(r)
		}
		if s.raw != nil {
			s.raw(&cfg, sub.Raw())
		}
		sc, ok := secCfg[s.name]
		if !ok {
			continue
		}
		if err := unmarshal(sub, "", sc, errorUnused); err != nil {
			decodeProblems(&p, s.name+".", err)
		}
		s.set(&cfg, sc)
	}
	if cfg.Kafka.Advertised == "" {
		if l := k.String("protocol.listen"); l != "" {
			if host, port, err := net.SplitHostPort(l); err == nil && port != "0" && !isWildcard(host) {
				cfg.Kafka.Advertised = l
			}
		}
	}
	if len(p) > 0 {
		return nil, p.err()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// mustLoad loads a map into k; a confmap provider never fails.
func mustLoad(k *koanf.Koanf, m map[string]any) {
	if err := k.Load(confmap.Provider(m, "."), nil); err != nil {
		panic(fmt.Sprintf("config: loading a map: %v", err))
	}
}

// readFile reads the config file named by src, or DefaultFile if present.
func readFile(src Sources) (string, map[string]any, error) {
	name := src.File
	if name == "" {
		def := filepath.Join(src.Dir, DefaultFile)
		if _, err := os.Stat(def); errors.Is(err, fs.ErrNotExist) {
			return "", nil, nil
		}
		name = def
	}
	var parser koanf.Parser
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		parser = yaml.Parser()
	case ".toml":
		parser = toml.Parser()
	default:
		return "", nil, fmt.Errorf("config file %s: unknown extension (want .yaml, .yml or .toml)", name)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", nil, fmt.Errorf("config file: %w", err)
	}
	m, err := parser.Unmarshal(b)
	if err != nil {
		return "", nil, fmt.Errorf("config file %s: %w", name, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return name, m, nil
}

// flatKeys lists the leaf keys of a nested map. An empty or null section
// (`broker:` alone) is listed as a key too and is accepted if it prefixes a
// known key.
func flatKeys(m map[string]any) []string {
	if m == nil {
		return nil
	}
	cp := maps.Copy(m)
	fm, _ := maps.Flatten(cp, nil, ".")
	keys := make([]string, 0, len(fm))
	for k := range fm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dropNils removes null values (`key:` with nothing after it in YAML): a
// key without a value is as if it were not there, and a null section must
// not wipe the defaults below it.
func dropNils(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			dropNils(v)
		}
	}
}

// envValues maps CHRONIK_* variables to known keys; unknown is called with
// the name of each variable that names none (nil: ignore them).
func envValues(env map[string]string, known *knownKeys, unknown func(name string)) map[string]any {
	byEnv := make(map[string]string, len(known.keys))
	for k := range known.keys {
		byEnv[EnvName(k)] = k
	}
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]any{}
	for _, n := range names {
		if k, ok := byEnv[n]; ok {
			out[k] = env[n]
		} else if unknown != nil {
			unknown(n)
		}
	}
	return out
}

// envCollisions reports two known keys with the same environment name.
func envCollisions(known *knownKeys) error {
	seen := map[string]string{}
	var errs []error
	keys := make([]string, 0, len(known.keys))
	for k := range known.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := EnvName(k)
		if other, ok := seen[n]; ok {
			errs = append(errs, fmt.Errorf("keys %q and %q share the environment variable %s", other, k, n))
		}
		seen[n] = k
	}
	return errors.Join(errs...)
}

// unmarshal decodes k's path into out (a pointer), converting strings from
// the environment and flags to the field types.
func unmarshal(k *koanf.Koanf, path string, out any, errorUnused bool) error {
	return k.UnmarshalWithConf(path, out, koanf.UnmarshalConf{
		Tag: "koanf",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				peersHook,
				durationHook,
				mapstructure.StringToSliceHookFunc(","),
				mapstructure.TextUnmarshallerHookFunc(),
			),
			WeaklyTypedInput: true,
			ErrorUnused:      errorUnused,
		},
	})
}

// decodeProblems adds the errors of a decode, one per key, each named by
// its full key (prefix + the decoder's name).
func decodeProblems(p *problems, prefix string, err error) {
	inner := errors.Unwrap(err) // past "decoding failed due to ..."
	if inner == nil {
		inner = err
	}
	list := []error{inner}
	if j, ok := inner.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		var de *mapstructure.DecodeError
		if !errors.As(e, &de) {
			p.addf("%s %w", prefix, e)
			continue
		}
		msg := de.Unwrap().Error()
		var pe *mapstructure.ParseError
		if errors.As(de.Unwrap(), &pe) && pe.Expected.IsValid() {
			msg = fmt.Sprintf("cannot parse %q as %s", fmt.Sprint(pe.Value), pe.Expected.Type())
		}
		p.addf("%s%s: %s", prefix, de.Name(), msg)
	}
}

// durationHook reads a time.Duration from a Go duration string.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from.Kind() != reflect.String {
		return data, nil
	}
	d, err := time.ParseDuration(reflect.ValueOf(data).String())
	if err != nil {
		return nil, fmt.Errorf("cannot parse %q as a duration (such as 500ms or 1m30s)", data)
	}
	return d, nil
}

var peersType = reflect.TypeFor[[]Peer]()

// peersHook reads cluster.peers written as "id=addr/kafka,id=addr/kafka"
// (as from the environment or --set), or as a list of such strings.
func peersHook(from, to reflect.Type, data any) (any, error) {
	if to != peersType {
		return data, nil
	}
	var items []string
	switch d := data.(type) {
	case string:
		if strings.TrimSpace(d) == "" {
			return []Peer{}, nil
		}
		items = strings.Split(d, ",")
	case []any:
		for _, e := range d {
			s, ok := e.(string)
			if !ok {
				return data, nil // a list of {id, addr} maps: decode normally
			}
			items = append(items, s)
		}
	default:
		return data, nil
	}
	peers := make([]Peer, 0, len(items))
	for _, it := range items {
		id, addrs, ok := strings.Cut(strings.TrimSpace(it), "=")
		n, err := strconv.ParseInt(id, 10, 32)
		addr, kafka, _ := strings.Cut(addrs, "/")
		if !ok || err != nil {
			return nil, fmt.Errorf("cluster.peers: %q: want id=addr/kafka (such as 2=127.0.0.1:9093/127.0.0.1:9092)", it)
		}
		peers = append(peers, Peer{ID: int32(n), Addr: addr, Kafka: kafka})
	}
	return peers, nil
}
