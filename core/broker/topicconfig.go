package broker

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"github.com/chronik-go/chronik/core/protocol"
)

var topicNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// validTopicName applies Kafka's rule for topic names.
func validTopicName(name string) error {
	if name == "." || name == ".." || !topicNameRE.MatchString(name) {
		return fmt.Errorf("topic name %q is invalid: 1 to 249 characters of [a-zA-Z0-9._-], not \".\" or \"..\"", name)
	}
	return nil
}

// topicConfigDef is one topic-level config key the broker knows.
type topicConfigDef struct {
	def      func(c *Config) string
	validate func(v string) error
}

func intValidator(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %v", v, vals)
	}
}

func constant(s string) func(*Config) string { return func(*Config) string { return s } }

// topicConfigs are the topic configs Chronik accepts, with their defaults.
var topicConfigs = map[string]topicConfigDef{
	"max.message.bytes":      {def: func(c *Config) string { return strconv.Itoa(int(c.MaxMessageBytes)) }, validate: intValidator(0)},
	"retention.ms":           {def: constant("604800000"), validate: intValidator(-1)},
	"retention.bytes":        {def: constant("-1"), validate: intValidator(-1)},
	"cleanup.policy":         {def: constant("delete"), validate: oneOf("delete")},
	"segment.bytes":          {def: constant("1073741824"), validate: intValidator(14)},
	"message.timestamp.type": {def: constant("CreateTime"), validate: oneOf("CreateTime")},
	"compression.type":       {def: constant("producer"), validate: oneOf("producer")},
	"min.insync.replicas":    {def: constant("1"), validate: intValidator(1)},
}

// validateTopicConfigs checks a topic's config overrides.
func validateTopicConfigs(cfgs map[string]string) (protocol.ErrorCode, error) {
	for k, v := range cfgs {
		d, ok := topicConfigs[k]
		if !ok {
			return protocol.ErrInvalidConfig, fmt.Errorf("unknown or unsupported topic config %q", k)
		}
		if err := d.validate(v); err != nil {
			return protocol.ErrInvalidConfig, fmt.Errorf("topic config %s: %w", k, err)
		}
	}
	return protocol.ErrNone, nil
}

// describeTopicConfigs lists a topic's configs: overrides and defaults.
func (b *Broker) describeTopicConfigs(overrides map[string]string, keys []string) []protocol.ConfigEntry {
	if keys == nil {
		for k := range topicConfigs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	var out []protocol.ConfigEntry
	for _, k := range keys {
		d, ok := topicConfigs[k]
		if !ok {
			continue
		}
		e := protocol.ConfigEntry{Name: k, Source: protocol.ConfigSourceDefault, Default: true}
		v := d.def(&b.cfg)
		if o, ok := overrides[k]; ok {
			v, e.Source, e.Default = o, protocol.ConfigSourceDynamicTopic, false
		}
		e.Value = &v
		out = append(out, e)
	}
	return out
}

// topicMaxMessageBytes is the topic's max.message.bytes.
func (b *Broker) topicMaxMessageBytes(t *topicMeta) int {
	if v, ok := t.Configs["max.message.bytes"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return int(b.cfg.MaxMessageBytes)
}
