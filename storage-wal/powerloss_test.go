package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/storage"
	"github.com/chronik-go/chronik/core/storage/storagetest"
)

// TestPowerLoss runs a store with sync marks, takes an image of its
// directory as a SIGKILL would leave it, applies SimulatePowerLoss to
// copies of it with several seeds and checks that the recovered store holds
// every write a synced Write returned for, and a prefix of each group's
// writes. Replay one iteration with STORAGETEST_SEED=<seed>.
func TestPowerLoss(t *testing.T) {
	n := 20
	if testing.Short() {
		n = 5
	}
	base := uint64(time.Now().UnixNano())
	if v := os.Getenv(storagetest.SeedEnv); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", storagetest.SeedEnv, v, err)
		}
		base, n = seed, 1
	}
	t.Logf("power loss tests: %d iterations from seed %d (replay one with %s=<seed>)", n, base, storagetest.SeedEnv)
	var recycled, damaged, lostWrites int
	for i := range n {
		seed := base + uint64(i)
		var st powerLossStats
		if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { st = powerLossIteration(t, seed) }) {
			t.Logf("stopping after the first failure; replay it with %s=%d", storagetest.SeedEnv, seed)
			return
		}
		recycled += st.recycled
		damaged += st.damaged
		lostWrites += st.lostWrites
	}
	t.Logf("%d recycled segments in use, %d damaged images, %d images that lost unsynced writes", recycled, damaged, lostWrites)
	if recycled == 0 {
		t.Errorf("no image held a recycled segment: the test does not cover recycling")
	}
}

type powerLossStats struct{ recycled, damaged, lostWrites int }

// plSnap is a group's bounds and state after some prefix of its writes.
type plSnap struct {
	first, last uint64
	state       string
}

// plGroup is the history of one group: snaps[k] is the group after its
// first k GroupWrites; synced is the last k a synced Write covered.
type plGroup struct {
	id     storage.GroupID
	snaps  []plSnap
	synced int
}

// plPayload is the data of entry idx of group g: every entry is written
// with term 1 and this data, so that reading it back checks it.
func plPayload(g storage.GroupID, idx uint64) []byte {
	b := make([]byte, int((uint64(g)*131+idx*37)%1500))
	for i := range b {
		b[i] = byte(uint64(g) + idx*7 + uint64(i))
	}
	return b
}

func powerLossIteration(t *testing.T, seed uint64) powerLossStats {
	var st powerLossStats
	ctx := context.Background()
	cfg := testConfig(64 << 10)
	cfg.SyncMarks = true
	cfg.RecycleSegments = 2
	s := openT(t, filepath.Join(t.TempDir(), "store"), cfg)

	const writers, perWriter = 4, 2
	groups := make([]*plGroup, writers*perWriter)
	for i := range groups {
		groups[i] = &plGroup{id: storage.GroupID(i + 1), snaps: []plSnap{{first: 1}}}
	}
	var wg sync.WaitGroup
	for w := range writers {
		own := groups[w*perWriter : (w+1)*perWriter]
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			n := 100 + rng.IntN(50)
			for i := range n + 3 {
				sync := i < n && rng.IntN(3) != 0 // then a few unsynced ones
				var ws []storage.GroupWrite
				for _, g := range own {
					if len(ws) > 0 && rng.IntN(2) == 0 {
						continue
					}
					cur := g.snaps[len(g.snaps)-1]
					gw := storage.GroupWrite{Group: g.id}
					for range 1 + rng.IntN(3) {
						idx := cur.last + 1
						gw.Entries = append(gw.Entries, storage.Entry{Index: idx, Term: 1, Data: plPayload(g.id, idx)})
						cur.last = idx
					}
					if rng.IntN(8) == 0 && cur.last > 10 {
						gw.TruncBefore = cur.last - 5
						cur.first = max(cur.first, gw.TruncBefore)
					}
					cur.state = fmt.Sprintf("g%d@%d", g.id, cur.last)
					gw.State = []byte(cur.state)
					ws = append(ws, gw)
					g.snaps = append(g.snaps, cur)
				}
				if err := s.Write(ctx, ws, sync); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				if sync {
					for _, g := range own {
						g.synced = len(g.snaps) - 1
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	img := filepath.Join(t.TempDir(), "image")
	killImage(t, s, img)
	st.recycled = recycledInUse(t, img)

	for v := range 3 {
		groups := cloneGroups(groups)
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("loss-%d", v))
		copyDir(t, img, dir)
		before := readFiles(t, dir)
		loss, err := SimulatePowerLoss(dir, rand.New(rand.NewPCG(seed, 1000+uint64(v))))
		if err != nil {
			t.Fatalf("SimulatePowerLoss: %v", err)
		}
		t.Logf("variant %d: %v", v, loss)
		after := readFiles(t, dir)
		damaged := false
		for _, f := range loss.Files {
			damaged = damaged || f.Damaged()
			if f.Removed || f.Restored {
				continue
			}
			b, a := before[f.Name], after[f.Name]
			if n := min(f.Synced, int64(len(b))); int64(len(a)) < n || !bytes.Equal(a[:n], b[:n]) {
				t.Fatalf("%s: bytes before the synced length %d changed", f.Name, f.Synced)
			}
		}
		for name := range after {
			if strings.HasSuffix(name, markSuffix) {
				t.Fatalf("sync mark %s left after SimulatePowerLoss", name)
			}
		}
		if damaged {
			st.damaged++
		}

		s2, err := Open(ctx, dir, cfg, nil)
		if err != nil {
			dumpDir(t, dir)
			t.Fatalf("Open after the power loss: %v\n%v", err, loss)
		}
		rec := s2.Recovery()
		prefix := make([]int, len(groups))
		lost := false
		for i, g := range groups {
			prefix[i] = checkPrefix(t, s2, g)
			lost = lost || prefix[i] < len(g.snaps)-1
		}
		if lost {
			st.lostWrites++
		}
		if rec.Truncated {
			var hit *FileLoss
			for i := range loss.Files {
				if loss.Files[i].Name == filepath.Base(rec.Segment) {
					hit = &loss.Files[i]
				}
			}
			// Never before the synced length; and at the end of the data
			// written, where a recycled file's stale bytes follow, if the
			// power loss changed nothing.
			switch {
			case hit == nil || rec.Offset < hit.Synced:
				t.Errorf("recovery cut %s at %d (%s), before its synced length\n%v", rec.Segment, rec.Offset, rec.Reason, loss)
			case !damaged && rec.Offset != hit.Synced+hit.Unsynced:
				t.Errorf("nothing was damaged, yet recovery cut %s at %d (%s), not at the end of its data %d\n%v",
					rec.Segment, rec.Offset, rec.Reason, hit.Synced+hit.Unsynced, loss)
			}
		}
		if !damaged && lost {
			t.Errorf("nothing was damaged, yet recovery lost writes\n%v", loss)
		}
		// The recovered store takes writes; after a clean Close a power
		// loss changes nothing.
		var ws []storage.GroupWrite
		for i, g := range groups {
			cur := g.snaps[prefix[i]]
			ws = append(ws, storage.GroupWrite{Group: g.id, Entries: []storage.Entry{{Index: cur.last + 1, Term: 1, Data: plPayload(g.id, cur.last+1)}},
				State: []byte(fmt.Sprintf("g%d@%d", g.id, cur.last+1))})
			g.snaps, g.synced = append(g.snaps[:prefix[i]+1:prefix[i]+1], plSnap{cur.first, cur.last + 1, fmt.Sprintf("g%d@%d", g.id, cur.last+1)}), prefix[i]+1
		}
		if err := s2.Write(ctx, ws, false); err != nil {
			t.Fatalf("Write after recovery: %v", err)
		}
		if err := s2.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		loss2, err := SimulatePowerLoss(dir, rand.New(rand.NewPCG(seed, 2000+uint64(v))))
		if err != nil {
			t.Fatalf("SimulatePowerLoss after Close: %v", err)
		}
		for _, f := range loss2.Files {
			if f.Unsynced > 0 || f.Damaged() || !f.Marked {
				t.Fatalf("after a clean Close the power loss changed something:\n%v", loss2)
			}
		}
		s3, err := Open(ctx, dir, cfg, nil)
		if err != nil {
			t.Fatalf("Open after Close: %v", err)
		}
		for _, g := range groups {
			if k := checkPrefix(t, s3, g); k != len(g.snaps)-1 {
				t.Errorf("group %d: after Close and reopen holds %d of %d writes", g.id, k, len(g.snaps)-1)
			}
		}
		if err := s3.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	return st
}

func cloneGroups(gs []*plGroup) []*plGroup {
	c := make([]*plGroup, len(gs))
	for i, g := range gs {
		c[i] = &plGroup{id: g.id, snaps: slices.Clone(g.snaps), synced: g.synced}
	}
	return c
}

// checkPrefix checks that s holds group g as it was after some prefix of
// its writes that includes every synced one, with the entries written, and
// returns the prefix's length.
func checkPrefix(t *testing.T, s *Store, g *plGroup) int {
	t.Helper()
	l, err := s.Log(g.id)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := l.FirstIndex()
	last, _ := l.LastIndex()
	state, _ := l.State()
	got := plSnap{first, last, string(state)}
	k := -1
	for i := len(g.snaps) - 1; i >= g.synced; i-- {
		if g.snaps[i] == got {
			k = i
			break
		}
	}
	if k < 0 {
		t.Fatalf("group %d holds %+v; want one of the %d snapshots from the synced one %+v on (last written %+v)",
			g.id, got, len(g.snaps)-g.synced, g.snaps[g.synced], g.snaps[len(g.snaps)-1])
	}
	if last >= first {
		es, err := l.Entries(first, last+1, 0)
		if err != nil {
			t.Fatalf("group %d: Entries(%d, %d): %v", g.id, first, last+1, err)
		}
		for i, e := range es {
			idx := first + uint64(i)
			if e.Index != idx || e.Term != 1 || !bytes.Equal(e.Data, plPayload(g.id, idx)) {
				t.Fatalf("group %d: entry %d read back as index %d term %d, %d bytes, not as written", g.id, idx, e.Index, e.Term, len(e.Data))
			}
		}
	}
	if first > 1 {
		if term, err := l.Term(first - 1); err != nil || term != 1 {
			t.Fatalf("group %d: Term(%d) = %d, %v; want 1", g.id, first-1, term, err)
		}
	}
	return k
}

// killImage copies the directory of open store s into dst with plain file
// copies, as a SIGKILL at this instant would leave it: the page cache (so
// the files as they read now) and no further writes. Closing s would sync,
// so it stays open; its locks keep it still while the files are copied.
func killImage(t *testing.T, s *Store, dst string) {
	t.Helper()
	s.syncMu.Lock()
	defer s.passLead()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	copyDir(t, s.dir, dst)
	// The active segment's mark is what the store knows durable.
	active := s.active()
	b, err := os.ReadFile(filepath.Join(dst, markName(active.seq)))
	if err != nil {
		t.Fatalf("sync mark of the active segment: %v", err)
	}
	if got, want := binary.LittleEndian.Uint64(b), s.syncPoint(active); got != want {
		t.Fatalf("sync mark of %s is %d; the store has it durable up to %d", active.path, got, want)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		in, err := os.Open(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string][]byte, len(des))
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[de.Name()] = b
	}
	return m
}

// recycledInUse counts the segment files of dir that hold a record of
// another segment: recycled files.
func recycledInUse(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for name, b := range readFiles(t, dir) {
		seq, ok := parseName(name, segSuffix)
		if !ok {
			continue
		}
		for off := int64(0); off+headerSize <= int64(len(b)); off += recordAlign {
			if h, ok := validAt(b, off); ok && h.seq != seq {
				n++
				break
			}
		}
	}
	return n
}

// TestSyncMarksOff checks that a store without SyncMarks writes no mark
// files (and removes stale ones), and that SimulatePowerLoss refuses such a
// directory.
func TestSyncMarksOff(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(64 << 10)
	cfg.SyncMarks = true
	s := openT(t, dir, cfg)
	mustWrite(t, s, true, storage.GroupWrite{Group: 1, Entries: []storage.Entry{ent(1, 1, "a")}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if marks := markFiles(t, dir); len(marks) == 0 {
		t.Fatalf("no sync marks with SyncMarks on")
	}

	cfg.SyncMarks = false
	s = openT(t, dir, cfg)
	data := bytes.Repeat([]byte("x"), 1000)
	for i := uint64(2); i < 300; i++ { // several segments
		mustWrite(t, s, i%2 == 0, storage.GroupWrite{Group: 1, Entries: []storage.Entry{{Index: i, Term: 1, Data: data}}, TruncBefore: i - 1})
	}
	if marks := markFiles(t, dir); len(marks) != 0 {
		t.Fatalf("sync marks without SyncMarks: %v", marks)
	}
	if _, err := SimulatePowerLoss(dir, rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Fatalf("SimulatePowerLoss of a directory in use succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if marks := markFiles(t, dir); len(marks) != 0 {
		t.Fatalf("sync marks without SyncMarks: %v", marks)
	}
	if _, err := SimulatePowerLoss(dir, rand.New(rand.NewPCG(1, 2))); err == nil {
		t.Fatalf("SimulatePowerLoss without sync marks succeeded")
	}
}

func markFiles(t *testing.T, dir string) []string {
	t.Helper()
	var marks []string
	for name := range readFiles(t, dir) {
		if strings.HasSuffix(name, markSuffix) {
			marks = append(marks, name)
		}
	}
	return marks
}

// TestPowerLossWindows covers the two windows in which a segment file's
// directory entry may not be durable: a segment prepared whose mark is not
// written yet, and a segment retired (renamed to its recycle file) whose
// mark is not removed yet. The image is made in such a window; over several
// seeds SimulatePowerLoss must both drop and keep the prepared segment,
// both restore and not restore the retired one, and every image must
// recover with all of the (synced) writes.
func TestPowerLossWindows(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(64 << 10)
	cfg.SyncMarks = true
	cfg.RecycleSegments = 4
	s := openT(t, filepath.Join(t.TempDir(), "store"), cfg)
	g := &plGroup{id: 1, snaps: []plSnap{{first: 1}}}
	retired := uint64(0)
	for i := uint64(1); retired == 0; i++ {
		if i > 5000 {
			t.Fatalf("no retired segment waits to be recycled after %d writes", i)
		}
		cur := plSnap{first: max(3, i) - 2, last: i, state: fmt.Sprintf("g1@%d", i)}
		mustWrite(t, s, true, storage.GroupWrite{Group: g.id, Entries: []storage.Entry{{Index: i, Term: 1, Data: plPayload(g.id, i)}},
			State: []byte(cur.state), TruncBefore: cur.first})
		g.snaps = append(g.snaps, cur)
		g.synced = len(g.snaps) - 1
		// The newest retired segment, still a recycle file: as if its
		// retiring had not reached the directory sync.
		s.mu.RLock()
		oldest := s.segs[0].seq
		s.mu.RUnlock()
		s.recMu.Lock()
		if n := len(s.recycled); n > 0 && s.recycled[n-1] == oldest-1 {
			retired = oldest - 1
		}
		s.recMu.Unlock()
	}
	poll(t, "the next segment prepared", func() bool {
		s.dirMu.Lock()
		defer s.dirMu.Unlock()
		s.mu.RLock()
		next := s.active().seq + 1
		s.mu.RUnlock()
		_, err := os.Stat(filepath.Join(s.dir, markName(next)))
		return err == nil
	})
	img := filepath.Join(t.TempDir(), "image")
	killImage(t, s, img)
	segs, _, err := dirFiles(img)
	if err != nil {
		t.Fatal(err)
	}
	prepared := segs[len(segs)-1]
	if err := os.Remove(filepath.Join(img, markName(prepared))); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(img, recycleName(retired)))
	if err != nil {
		t.Fatal(err)
	}
	mark := binary.LittleEndian.AppendUint64(nil, uint64(len(b))) // sealed, synced whole
	if err := os.WriteFile(filepath.Join(img, markName(retired)), mark, 0o644); err != nil {
		t.Fatal(err)
	}

	var removed, kept, restored, notRestored int
	for seed := range uint64(16) {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("loss-%d", seed))
		copyDir(t, img, dir)
		loss, err := SimulatePowerLoss(dir, rand.New(rand.NewPCG(seed, 7)))
		if err != nil {
			t.Fatalf("SimulatePowerLoss: %v", err)
		}
		for _, f := range loss.Files {
			switch seq, _ := parseName(f.Name, segSuffix); {
			case seq == prepared && f.Removed:
				removed++
			case seq == prepared:
				kept++
			}
		}
		if slices.ContainsFunc(loss.Files, func(f FileLoss) bool { return f.Restored }) {
			restored++
		} else {
			notRestored++
		}
		s2, err := Open(ctx, dir, cfg, nil)
		if err != nil {
			t.Fatalf("seed %d: Open after the power loss: %v\n%v", seed, err, loss)
		}
		if k := checkPrefix(t, s2, g); k != len(g.snaps)-1 {
			t.Errorf("seed %d: holds %d of %d synced writes", seed, k, len(g.snaps)-1)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if removed == 0 || kept == 0 || restored == 0 || notRestored == 0 {
		t.Errorf("prepared segment removed %d, kept %d times; retired segment restored %d, not %d times: want each at least once",
			removed, kept, restored, notRestored)
	}
}
