package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func dumpDir(t testing.TB, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	for _, p := range files {
		data, _ := os.ReadFile(p)
		seq, _ := parseName(filepath.Base(p), segSuffix)
		for _, off := range dataRecordOffsets(data, seq) {
			h, _ := parseHeader(data[off:])
			body := data[off+headerSize : off+headerSize+int64(h.bodyLen)]
			desc := ""
			switch h.typ {
			case recBatch, recRelocate:
				gws, _ := decodeBatch(body)
				for _, w := range gws {
					if len(w.entries) > 0 {
						desc += fmt.Sprintf(" g%d[%d..%d]", w.group, w.entries[0].index, w.entries[len(w.entries)-1].index)
					}
					if w.reset != nil {
						desc += fmt.Sprintf(" g%d reset%v", w.group, *w.reset)
					}
					if w.truncBefore > 0 {
						desc += fmt.Sprintf(" g%d tb%d", w.group, w.truncBefore)
					}
				}
			case recDrop:
				g, _ := decodeUvarintBody(body)
				desc = fmt.Sprintf(" drop g%d", g)
			case recCheckpoint:
				ms, _ := decodeCheckpoint(body)
				for _, m := range ms {
					desc += fmt.Sprintf(" g%d[%d..%d]", m.group, m.first, m.last)
				}
			}
			t.Logf("%s@%d type %d sync %d:%s", filepath.Base(p), off, h.typ, h.syncPoint, desc)
		}
	}
}
