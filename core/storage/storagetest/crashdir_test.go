package storagetest

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestCrashDir(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 100)
	for _, name := range []string{"a", "sub/b", "c"} {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	synced := func(rel string) (int64, bool) {
		switch rel {
		case "a":
			return 300, true
		case "sub/b":
			return int64(len(data)), true
		}
		return 0, false
	}
	sawMissing, sawCut := false, false
	for seed := range uint64(50) {
		dst := filepath.Join(t.TempDir(), "img")
		if err := CrashDir(dst, src, synced, rand.New(rand.NewPCG(seed, 0))); err != nil {
			t.Fatalf("CrashDir: %v", err)
		}
		a, err := os.ReadFile(filepath.Join(dst, "a"))
		if err != nil || len(a) < 300 || !bytes.Equal(a[:300], data[:300]) {
			t.Fatalf("seed %d: a: the synced prefix is damaged (%d bytes, %v)", seed, len(a), err)
		}
		sawCut = sawCut || len(a) < len(data)
		if b, err := os.ReadFile(filepath.Join(dst, "sub/b")); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("seed %d: sub/b: a fully synced file changed (%v)", seed, err)
		}
		if _, err := os.Stat(filepath.Join(dst, "c")); os.IsNotExist(err) {
			sawMissing = true
		}
	}
	if !sawMissing || !sawCut {
		t.Errorf("50 seeds never dropped an unsynced file (%v) or cut a synced one (%v)", !sawMissing, !sawCut)
	}
}
