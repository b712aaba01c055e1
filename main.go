// Command sda is the SDA Pulumi program, run by `pulumi up` (runtime: go).
// The same program is embedded by the automation package and cmd/sda.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/stacks"
)

func main() {
	pulumi.Run(stacks.Program)
}
