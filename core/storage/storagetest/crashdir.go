package storagetest

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// CrashDir copies the directory tree src into dst (which must not exist or
// be empty) as a crash might leave it, for implementing Crasher.CrashCopy.
//
// synced reports, for each regular file by its slash-separated path
// relative to src, how many of its leading bytes are durable (a completed
// fsync covered them), and whether the file's existence is durable (its
// directory was synced after it was created). For each file a cut point is
// drawn uniformly from [synced, size]; zero to two random bytes between the
// synced length and the cut are flipped; everything after the cut is
// dropped. A file whose existence is not durable is left out half of the
// time. Every choice is drawn from rng, so a seed replays the image.
//
// The caller must keep the store from writing while CrashDir runs.
func CrashDir(dst, src string, synced func(rel string) (n int64, exists bool), rng *rand.Rand) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case !d.Type().IsRegular():
			return fmt.Errorf("storagetest: crash copy of %s: not a regular file", path)
		}
		n, exists := synced(filepath.ToSlash(rel))
		if !exists && rng.IntN(2) == 0 {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		size := int64(len(b))
		n = min(max(n, 0), size)
		cut := n + rng.Int64N(size-n+1)
		if cut > n {
			for range rng.IntN(3) {
				b[n+rng.Int64N(cut-n)] ^= byte(1 + rng.IntN(255))
			}
		}
		return os.WriteFile(to, b[:cut], 0o644)
	})
}
