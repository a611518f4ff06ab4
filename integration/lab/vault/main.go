// Command vault is a Vault server built from the Go module proxy for the lab.
// It is a local test tool only: Vault from 1.15 is BUSL-1.1 and is never shipped in swarmguard's image.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
