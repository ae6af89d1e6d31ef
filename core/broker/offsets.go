package broker

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"slices"
)

// OffsetsTopic is the internal topic holding consumer groups' committed
// offsets and group metadata, one group per partition (see partitionFor).
const OffsetsTopic = "__consumer_offsets"

// The records of __consumer_offsets use Kafka's own key and value schemas
// (kmsg.OffsetCommitKey/Value, GroupMetadataKey/Value), so that Kafka
// tooling reading the topic understands them. core imports no Kafka
// library, so the few schemas are encoded here by hand; the integration
// tests decode what a broker wrote with kmsg.
const (
	keyOffsetCommit   int16 = 1 // key v0 and v1: group, topic, partition
	keyGroupMetadata  int16 = 2 // key v2: group
	valueOffsetCommit int16 = 3 // offset, leader epoch, metadata, commit timestamp
	valueGroupMeta    int16 = 3 // with static membership (group instance ids)
)

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// storedOffset is a committed offset as the log holds it.
type storedOffset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTS    int64
}

// storedMember is a member in a group metadata record.
type storedMember struct {
	memberID         string
	instanceID       *string
	clientID         string
	clientHost       string
	rebalanceTimeout int32 // ms
	sessionTimeout   int32 // ms
	subscription     []byte
	assignment       []byte
}

// storedGroupMeta is a group metadata record's value.
type storedGroupMeta struct {
	protocolType string
	generation   int32
	protocol     *string
	leader       *string
	stateTS      int64
	members      []storedMember
}

// storedGroup is what the log says about one group.
type storedGroup struct {
	offsets map[topicPartition]storedOffset
	meta    *storedGroupMeta // nil: no metadata record (or a tombstone)
}

// groupsState is the materialized content of one __consumer_offsets
// partition: every replica computes it at apply time from the same log, so
// a new coordinator finds it ready.
type groupsState struct {
	groups map[string]*storedGroup
}

func newGroupsState() *groupsState { return &groupsState{groups: map[string]*storedGroup{}} }

func (s *groupsState) group(name string) *storedGroup {
	g := s.groups[name]
	if g == nil {
		g = &storedGroup{offsets: map[topicPartition]storedOffset{}}
		s.groups[name] = g
	}
	return g
}

func (s *groupsState) gc(name string) {
	if g := s.groups[name]; g != nil && g.meta == nil && len(g.offsets) == 0 {
		delete(s.groups, name)
	}
}

// clone copies one group for a reader outside the partition lock.
func (g *storedGroup) clone() *storedGroup {
	if g == nil {
		return nil
	}
	c := &storedGroup{offsets: maps.Clone(g.offsets), meta: g.meta}
	return c
}

// applyBatch materializes the records of one uncompressed batch. Records it
// does not understand are skipped: every replica skips them alike.
func (s *groupsState) applyBatch(b []byte, h batchHeader) {
	if h.compression() != 0 || h.control() || h.Length > len(b) {
		return
	}
	p := b[batchHeaderLen:h.Length]
	for i := int32(0); i < h.NumRecords; i++ {
		key, value, rest, ok := nextRecord(p)
		if !ok {
			return
		}
		p = rest
		s.applyRecord(key, value)
	}
}

func (s *groupsState) applyRecord(key, value []byte) {
	d := decoder{b: key}
	switch d.int16() {
	case 0, keyOffsetCommit:
		grp, topic, part := d.string(), d.string(), d.int32()
		if d.err != nil {
			return
		}
		g := s.group(grp)
		tp := topicPartition{topic, part}
		if value == nil {
			delete(g.offsets, tp)
			s.gc(grp)
			return
		}
		if v, err := decodeOffsetValue(value); err == nil {
			g.offsets[tp] = v
		}
	case keyGroupMetadata:
		grp := d.string()
		if d.err != nil {
			return
		}
		g := s.group(grp)
		if value == nil {
			g.meta = nil
			s.gc(grp)
			return
		}
		if m, err := decodeGroupMeta(value); err == nil {
			g.meta = m
		}
	}
}

// nextRecord reads one record of a v2 batch: key and value (nil when null).
func nextRecord(p []byte) (key, value, rest []byte, ok bool) {
	length, n := binary.Varint(p)
	if n <= 0 || length < 0 || int64(len(p)-n) < length {
		return nil, nil, nil, false
	}
	rec, rest := p[n:n+int(length)], p[n+int(length):]
	if len(rec) < 1 {
		return nil, nil, nil, false
	}
	rec = rec[1:] // attributes
	for range 2 { // timestamp delta, offset delta
		if _, n := binary.Varint(rec); n > 0 {
			rec = rec[n:]
		} else {
			return nil, nil, nil, false
		}
	}
	field := func() ([]byte, bool) {
		l, n := binary.Varint(rec)
		if n <= 0 || l < -1 || int64(len(rec)-n) < l {
			return nil, false
		}
		rec = rec[n:]
		if l < 0 {
			return nil, true
		}
		f := rec[:l:l]
		rec = rec[l:]
		return f, true
	}
	if key, ok = field(); !ok {
		return nil, nil, nil, false
	}
	if value, ok = field(); !ok {
		return nil, nil, nil, false
	}
	return key, value, rest, true
}

// record is a key and value to write into __consumer_offsets; a nil value
// is a tombstone.
type record struct {
	key, value []byte
}

// buildBatch encodes records as one uncompressed v2 record batch with no
// producer, timestamped ts (ms).
func buildBatch(recs []record, ts int64) []byte {
	b := make([]byte, batchHeaderLen, batchHeaderLen+64*len(recs))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = 2
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(len(recs)-1))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offProducerID:], 0xffffffffffffffff)
	binary.BigEndian.PutUint16(b[offProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(len(recs)))
	var body []byte
	for i, r := range recs {
		body = body[:0]
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, 0)        // timestamp delta
		body = binary.AppendVarint(body, int64(i)) // offset delta
		body = binary.AppendVarint(body, int64(len(r.key)))
		body = append(body, r.key...)
		if r.value == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(r.value)))
			body = append(body, r.value...)
		}
		body = binary.AppendVarint(body, 0) // headers
		b = binary.AppendVarint(b, int64(len(body)))
		b = append(b, body...)
	}
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32c))
	return b
}

func offsetKey(group, topic string, partition int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(keyOffsetCommit))
	b = appendString(b, group)
	b = appendString(b, topic)
	return binary.BigEndian.AppendUint32(b, uint32(partition))
}

func groupKey(group string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(keyGroupMetadata))
	return appendString(b, group)
}

func encodeOffsetValue(v storedOffset) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(valueOffsetCommit))
	b = binary.BigEndian.AppendUint64(b, uint64(v.offset))
	b = binary.BigEndian.AppendUint32(b, uint32(v.leaderEpoch))
	b = appendString(b, v.metadata)
	return binary.BigEndian.AppendUint64(b, uint64(v.commitTS))
}

func decodeOffsetValue(b []byte) (storedOffset, error) {
	d := decoder{b: b}
	v := storedOffset{leaderEpoch: -1}
	ver := d.int16()
	v.offset = d.int64()
	if ver >= 3 {
		v.leaderEpoch = d.int32()
	}
	v.metadata = d.string()
	v.commitTS = d.int64()
	if ver > 3 || ver < 0 {
		return v, errors.New("unsupported offset commit value version")
	}
	return v, d.err
}

func encodeGroupMeta(m *storedGroupMeta) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(valueGroupMeta))
	b = appendString(b, m.protocolType)
	b = binary.BigEndian.AppendUint32(b, uint32(m.generation))
	b = appendNullableString(b, m.protocol)
	b = appendNullableString(b, m.leader)
	b = binary.BigEndian.AppendUint64(b, uint64(m.stateTS))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.members)))
	for _, mb := range m.members {
		b = appendString(b, mb.memberID)
		b = appendNullableString(b, mb.instanceID)
		b = appendString(b, mb.clientID)
		b = appendString(b, mb.clientHost)
		b = binary.BigEndian.AppendUint32(b, uint32(mb.rebalanceTimeout))
		b = binary.BigEndian.AppendUint32(b, uint32(mb.sessionTimeout))
		b = appendBytes(b, mb.subscription)
		b = appendBytes(b, mb.assignment)
	}
	return b
}

func decodeGroupMeta(b []byte) (*storedGroupMeta, error) {
	d := decoder{b: b}
	ver := d.int16()
	if ver < 0 || ver > 3 {
		return nil, errors.New("unsupported group metadata value version")
	}
	m := &storedGroupMeta{}
	m.protocolType = d.string()
	m.generation = d.int32()
	m.protocol = d.nullableString()
	m.leader = d.nullableString()
	if ver >= 2 {
		m.stateTS = d.int64()
	}
	n := d.int32()
	for i := int32(0); i < n && d.err == nil; i++ {
		var mb storedMember
		mb.memberID = d.string()
		if ver >= 3 {
			mb.instanceID = d.nullableString()
		}
		mb.clientID = d.string()
		mb.clientHost = d.string()
		if ver >= 1 {
			mb.rebalanceTimeout = d.int32()
		}
		mb.sessionTimeout = d.int32()
		if ver == 0 {
			mb.rebalanceTimeout = mb.sessionTimeout
		}
		mb.subscription = d.bytes()
		mb.assignment = d.bytes()
		m.members = append(m.members, mb)
	}
	return m, d.err
}

// subscribedTopics reads the topics of a consumer protocol subscription
// (ConsumerMemberMetadata: version, topics, ...); ok is false for another
// protocol's metadata.
func subscribedTopics(meta []byte) (topics []string, ok bool) {
	d := decoder{b: meta}
	if d.int16() < 0 {
		return nil, false
	}
	n := d.int32()
	for i := int32(0); i < n && d.err == nil; i++ {
		topics = append(topics, d.string())
	}
	return topics, d.err == nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendNullableString(b []byte, s *string) []byte {
	if s == nil {
		return binary.BigEndian.AppendUint16(b, 0xffff)
	}
	return appendString(b, *s)
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

var errShort = errors.New("record field runs past its end")

// decoder reads big-endian Kafka primitives; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) int16() int16 {
	if v := d.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return -1
}

func (d *decoder) int32() int32 {
	if v := d.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return -1
}

func (d *decoder) int64() int64 {
	if v := d.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return -1
}

func (d *decoder) string() string {
	n := d.int16()
	return string(d.take(int(n)))
}

func (d *decoder) nullableString() *string {
	n := d.int16()
	if d.err != nil || n == -1 {
		return nil
	}
	s := string(d.take(int(n)))
	return &s
}

func (d *decoder) bytes() []byte {
	n := d.int32()
	if d.err != nil || n == -1 {
		return nil
	}
	return slices.Clone(d.take(int(n)))
}

// javaStringHash is Java's String.hashCode over UTF-16 code units, so that
// partitionFor matches Kafka's choice of a group's partition.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// partitionFor is Kafka's abs(groupId.hashCode) % n (Utils.abs maps
// MinInt32 to 0).
func partitionFor(group string, n int32) int32 {
	h := javaStringHash(group)
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}
