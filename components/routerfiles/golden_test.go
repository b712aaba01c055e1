package routerfiles_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/sda-platform/sda/components/routerfiles"
)

var update = flag.Bool("update", false, "rewrite testdata/single.golden from the current renderer")

// TestSingleRouterUnchanged holds a single router's output (Pair == nil) to
// the bytes recorded before pairs existed: every file, the digest the
// component re-applies on, and the Debian apply script. A deployed single
// router must not see a single byte change because pairs were added.
func TestSingleRouterUnchanged(t *testing.T) {
	s := testSpec(t, nil)
	f := routerfiles.Render(s)
	got := "digest " + f.Digest() + "\n--- nftables\n" + f.Nftables + "--- dnsmasq\n" + f.Dnsmasq +
		"--- sysctl\n" + f.Sysctl + "--- apply\n" + routerfiles.ApplyScript(f, routerfiles.DebianLayout())
	golden := filepath.Join("testdata", "single.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the single router's output changed; run with -update only if that is intended:\n%s", got)
	}
}
