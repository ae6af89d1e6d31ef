package etcd

import (
	"strings"
	"testing"
)

// A group written by consensus-hashicorp is refused with an error naming
// both backends.
func TestStateOfOtherBackend(t *testing.T) {
	_, _, err := decodeState([]byte("HCR1\x00\x00"))
	if err == nil || !strings.Contains(err.Error(), "etcd") || !strings.Contains(err.Error(), "hashicorp") {
		t.Fatalf("decodeState of a hashicorp blob: %v", err)
	}
}
