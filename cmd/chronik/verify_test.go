package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestVerifyPairings(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    verifyOptions
		// want names each pairing with its kinds: "etcd+wal-plugin kill,plugin-kill".
		want  []string
		notes []string // substrings, one per note
	}{
		{
			name: "defaults",
			o:    verifyOptions{backends: []string{"etcd", "hashicorp"}, storages: []string{"wal"}, modes: []string{"inprocess"}, faults: []string{"kill", "powerloss"}},
			want: []string{"etcd kill,powerloss", "hashicorp kill,powerloss"},
		},
		{
			name: "plugin-mode places both, pebble always a subprocess",
			o: verifyOptions{backends: []string{"etcd", "hashicorp"}, storages: []string{"wal", "pebble"},
				modes: []string{"inprocess", "subprocess"}, faults: []string{"kill", "plugin-kill"}},
			want: []string{
				"etcd kill,kill",
				"etcd/consensus-plugin+wal-plugin kill,plugin-kill",
				"etcd+pebble-plugin kill,plugin-kill",
				"etcd/consensus-plugin+pebble-plugin kill,plugin-kill",
				"hashicorp kill,kill",
				"hashicorp/consensus-plugin+wal-plugin kill,plugin-kill",
				"hashicorp+pebble-plugin kill,plugin-kill",
				"hashicorp/consensus-plugin+pebble-plugin kill,plugin-kill",
			},
			notes: []string{"etcd: plugin-kill injected as kill", "hashicorp: plugin-kill injected as kill"},
		},
		{
			name: "old storage-plugin invocation now places both",
			o:    verifyOptions{backends: []string{"etcd"}, storages: []string{"wal"}, modes: []string{"subprocess"}, faults: []string{"plugin-kill"}},
			want: []string{"etcd/consensus-plugin+wal-plugin plugin-kill"},
		},
		{
			name: "storage-mode alone: the engine follows plugin-mode",
			o: verifyOptions{backends: []string{"etcd"}, storages: []string{"wal"}, modes: []string{"inprocess"},
				storageModes: []string{"subprocess"}, faults: []string{"plugin-kill", "powerloss"}},
			want: []string{"etcd+wal-plugin plugin-kill,powerloss"},
		},
		{
			name: "cross product",
			o: verifyOptions{backends: []string{"hashicorp"}, storages: []string{"wal"}, modes: []string{"inprocess"},
				consensusModes: []string{"inprocess", "subprocess"}, storageModes: []string{"inprocess", "subprocess"}, faults: []string{"kill"}},
			want: []string{"hashicorp kill", "hashicorp+wal-plugin kill", "hashicorp/consensus-plugin kill", "hashicorp/consensus-plugin+wal-plugin kill"},
		},
		{
			name: "pebble with storage-mode inprocess runs once, as a subprocess",
			o: verifyOptions{backends: []string{"etcd"}, storages: []string{"pebble"}, modes: []string{"inprocess"},
				consensusModes: []string{"subprocess"}, storageModes: []string{"inprocess", "subprocess"}, faults: []string{"plugin-kill", "kill"}},
			want:  []string{"etcd/consensus-plugin+pebble-plugin plugin-kill,kill"},
			notes: []string{"--storage-mode inprocess does not apply to pebble"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs, notes, err := pairings(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range runs {
				got = append(got, p.name()+" "+strings.Join(p.kinds, ","))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pairings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if len(notes) != len(tc.notes) {
				t.Errorf("notes %q, want %d: %q", notes, len(tc.notes), tc.notes)
			}
			for _, n := range tc.notes {
				if !slices.ContainsFunc(notes, func(s string) bool { return strings.Contains(s, n) }) {
					t.Errorf("no note with %q in %q", n, notes)
				}
			}
		})
	}
}

func TestVerifyPairingsRefused(t *testing.T) {
	base := verifyOptions{backends: []string{"etcd"}, storages: []string{"wal"}, modes: []string{"inprocess"}, faults: []string{"kill"}}
	for _, tc := range []struct {
		name string
		edit func(o *verifyOptions)
		want string
	}{
		{"plugin-kill with everything in process", func(o *verifyOptions) { o.faults = []string{"plugin-kill"} }, "needs a pairing that runs the consensus engine or the store as a subprocess"},
		{"powerloss on pebble only", func(o *verifyOptions) { o.storages, o.faults = []string{"pebble"}, []string{"powerloss"} }, "needs --storage wal"},
		{"unknown consensus mode", func(o *verifyOptions) { o.consensusModes = []string{"plugin"} }, `--consensus-mode "plugin"`},
		{"unknown storage mode", func(o *verifyOptions) { o.storageModes = []string{"sub"} }, `--storage-mode "sub"`},
		{"unknown plugin mode", func(o *verifyOptions) { o.modes = []string{"both"} }, `--plugin-mode "both"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, _, err := pairings(o)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want a usage error with %q", err, tc.want)
			}
		})
	}
}

func TestVerifyPairingFlags(t *testing.T) {
	o := verifyOptions{backends: []string{"etcd", "hashicorp"}, storages: []string{"wal"}, modes: []string{"inprocess"}, faults: []string{"kill"}}
	runs, _, err := pairings(o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.pairingFlags(runs), "--backend etcd,hashicorp"; got != want {
		t.Errorf("default pairings: %q, want %q", got, want)
	}
	o.consensusModes, o.pluginsDir = []string{"subprocess"}, "/p"
	if runs, _, err = pairings(o); err != nil {
		t.Fatal(err)
	}
	if got, want := o.pairingFlags(runs), "--backend etcd,hashicorp --storage wal --plugin-mode inprocess --consensus-mode subprocess --plugins-dir /p"; got != want {
		t.Errorf("with --consensus-mode: %q, want %q", got, want)
	}
	// The replay flags select the pairing alone.
	if got, want := runs[0].flags(), "--backend etcd --storage wal --consensus-mode subprocess --storage-mode inprocess"; got != want {
		t.Errorf("replay flags %q, want %q", got, want)
	}
	r, _, err := pairings(verifyOptions{backends: []string{"etcd"}, storages: []string{"wal"}, modes: []string{"inprocess"},
		consensusModes: []string{"subprocess"}, storageModes: []string{"inprocess"}, faults: []string{"kill"}})
	if err != nil || len(r) != 1 || r[0].name() != runs[0].name() {
		t.Errorf("the replay flags select %v (%v), want %s", r, err, runs[0].name())
	}
}
