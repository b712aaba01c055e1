package sdn_test

import (
	"fmt"

	"github.com/sda-platform/sda/components/sdn"
)

func ExampleApplyScript() {
	x := sdn.VXLAN{Zone: "zprod", VNet: "vprod", VNI: 4242, Peers: []string{"10.0.0.11", "10.0.0.12"}, MTU: 1450}
	if err := x.Validate(); err != nil {
		panic(err)
	}
	fmt.Print(sdn.ApplyScript(x))
	// Output:
	// set -eu
	// if pvesh get /cluster/sdn/zones/zprod >/dev/null 2>&1; then
	//   pvesh set /cluster/sdn/zones/zprod --peers 10.0.0.11,10.0.0.12 --mtu 1450
	// else
	//   pvesh create /cluster/sdn/zones --zone zprod --type vxlan --peers 10.0.0.11,10.0.0.12 --mtu 1450
	// fi
	// if pvesh get /cluster/sdn/vnets/vprod >/dev/null 2>&1; then
	//   pvesh set /cluster/sdn/vnets/vprod --zone zprod --tag 4242
	// else
	//   pvesh create /cluster/sdn/vnets --vnet vprod --zone zprod --tag 4242
	// fi
	// pvesh set /cluster/sdn
}
