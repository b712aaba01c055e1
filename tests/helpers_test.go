package tests

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/config"
)

// loadConfig reads the sda:* configuration the program is given.
func loadConfig(ctx *pulumi.Context) (config.Config, error) {
	return config.Load(func(key string) (string, bool) { return ctx.GetConfig(key) })
}
