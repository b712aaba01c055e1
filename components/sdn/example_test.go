package sdn_test

import (
	"fmt"

	"github.com/sda-platform/sda/components/sdn"
)

func ExampleDeleteScript() {
	x := sdn.VXLAN{Zone: "zprod", VNet: "vprod", VNI: 4242, Peers: []string{"10.0.0.11", "10.0.0.12"}, MTU: 1450, Nodes: []string{"pve1", "pve2"}}
	if err := x.Validate(); err != nil {
		panic(err)
	}
	fmt.Print(sdn.DeleteScript(x))
	// Output:
	// set -eu
	// zone='zprod'
	// vnet='vprod'
	// foreign_pl='use strict; use warnings; use JSON::PP;
	// my ($zone, $vnet, $zones, $vnets) = @ARGV;
	// for my $z (@{ decode_json($zones) }) {
	//     next if !$z->{state} && !$z->{pending};
	//     next if $z->{zone} eq $zone;
	//     printf "  zone %s: %s\n", $z->{zone}, $z->{state} // "changed";
	// }
	// for my $v (@{ decode_json($vnets) }) {
	//     next if !$v->{state} && !$v->{pending};
	//     next if $v->{vnet} eq $vnet;
	//     printf "  vnet %s (zone %s): %s\n", $v->{vnet}, $v->{zone} // $v->{pending}{zone} // "?", $v->{state} // "changed";
	// }
	// '
	// pending_zones=$(pvesh get /cluster/sdn/zones --pending 1 --output-format json)
	// pending_vnets=$(pvesh get /cluster/sdn/vnets --pending 1 --output-format json)
	// foreign=$(perl -e "$foreign_pl" "$zone" "$vnet" "$pending_zones" "$pending_vnets")
	// if [ -n "$foreign" ]; then
	//   echo "SDA: not removing SDN zone $zone and VNet $vnet: applying SDN (pvesh set /cluster/sdn) would also apply these pending SDN edits, which are not SDA's:" >&2
	//   printf '%s\n' "$foreign" >&2
	//   echo "Apply them (Proxmox UI: Datacenter > SDN > Apply) or undo them (Datacenter > SDN > Zones and VNets), then run SDA again." >&2
	//   exit 1
	// fi
	// if pvesh get "/cluster/sdn/vnets/$vnet" >/dev/null 2>&1; then
	//   pvesh delete "/cluster/sdn/vnets/$vnet"
	// fi
	// if pvesh get "/cluster/sdn/zones/$zone" >/dev/null 2>&1; then
	//   pvesh delete "/cluster/sdn/zones/$zone"
	// fi
	// pvesh set /cluster/sdn
}
