// Command chronik-storage-pebble is Chronik's storage on Pebble, run as a
// plugin: put it in the broker's plugins.dir (or name it in
// storage.plugin.path) and set storage.type: pebble, storage.plugin.mode:
// subprocess.
package main

import (
	pebblestore "github.com/chronik-go/chronik/plugins/examples/storage-pebble"
	"github.com/chronik-go/chronik/plugins/sdk"
)

func main() { sdk.ServeStorage(pebblestore.NewFactory()) }
