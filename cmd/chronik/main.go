// Command chronik runs a Chronik broker.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "chronik: the broker is not built yet (see the open issues); only the storage layer exists")
	os.Exit(1)
}
