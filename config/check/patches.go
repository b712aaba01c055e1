package check

import (
	"fmt"
	"strings"

	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/render"
)

// Patches loads every user patch (sda:cluster.patches) with Talos's
// patcher, applies it with SDA's patches to a generated configuration of
// each role the stack has (its first machine) and validates the result.
// Each problem names the patch by its index and carries Talos's complaint.
// One throwaway secrets bundle and one configuration per role keep it fast
// enough for `sda plan` and for the program before it registers anything.
// c and p are a resolved configuration and its plan.
func Patches(c config.Config, p config.Plan) []config.Problem {
	if len(c.Cluster.Patches) == 0 {
		return nil
	}
	if problems := unloadable(c.Cluster.Patches); len(problems) > 0 {
		return problems
	}
	input, image, err := render.GenerateInput(c, p)
	if err != nil {
		return []config.Problem{{Key: "sda:cluster.talosVersion", Value: c.Cluster.TalosVersion, Fix: err.Error()}}
	}
	var problems []config.Problem
	seen := map[int]bool{}
	for _, m := range firstOfEachRole(p) {
		idx, msg := firstBadPatch(input, c, p, m, image)
		if idx >= 0 && !seen[idx] {
			seen[idx] = true
			problems = append(problems, patchProblem(idx, c.Cluster.Patches[idx], "on a %s: %s", m.Role, msg))
		}
	}
	return problems
}

// unloadable names every patch Talos's patcher cannot load.
func unloadable(patches []string) []config.Problem {
	var problems []config.Problem
	for i, content := range patches {
		if _, err := configpatcher.LoadPatch([]byte(content)); err != nil {
			problems = append(problems, patchProblem(i, content, "Talos cannot load it as a patch: %s", err))
		}
	}
	return problems
}

// firstOfEachRole is the first control plane and the first worker, those
// the plan has: one configuration per role.
func firstOfEachRole(p config.Plan) []config.Machine {
	var firsts []config.Machine
	if len(p.ControlPlanes) > 0 {
		firsts = append(firsts, p.ControlPlanes[0])
	}
	if len(p.Workers) > 0 {
		firsts = append(firsts, p.Workers[0])
	}
	return firsts
}

// patchProblem is a problem with user patch i: its content on one line (at
// most 60 characters) and Talos's complaint.
func patchProblem(i int, content, format string, args ...any) config.Problem {
	value := strings.Join(strings.Fields(content), " ")
	if len(value) > 60 {
		value = value[:57] + "..."
	}
	msg := strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")
	return config.Problem{Key: fmt.Sprintf("sda:cluster.patches[%d]", i), Value: value,
		Fix: msg + "; fix or remove the patch (`sda render` shows the configuration it produces)"}
}

// firstBadPatch returns the index (in sda:cluster.patches) of the first user
// patch that does not apply, or with which the machine's configuration no
// longer validates, with Talos's message; -1 when all is well or when the
// fault is not a user patch's. A configuration validates only complete
// (SDA's node patches add the install disk), so each candidate is the whole
// patch list with the user's patches cut after the one under test.
func firstBadPatch(input *generate.Input, c config.Config, p config.Plan, m config.Machine, image string) (int, string) {
	generated, err := render.GenerateFor(input, m)
	if err != nil {
		return -1, ""
	}
	all := render.Patches(c, p, m, image)
	// try applies every patch but the user's from index keep on.
	try := func(keep int) error {
		cfg := configpatcher.WithConfig(generated)
		user := -1
		for _, patch := range all {
			if strings.HasPrefix(patch.Source, "sda:cluster.patches[") {
				if user++; user >= keep {
					continue
				}
			}
			loaded, err := configpatcher.LoadPatch([]byte(patch.Content))
			if err != nil {
				return err
			}
			if cfg, err = configpatcher.Apply(cfg, []configpatcher.Patch{loaded}); err != nil {
				return fmt.Errorf("it does not apply: %w", err)
			}
		}
		final, err := cfg.Config()
		if err != nil {
			return err
		}
		return render.Validate(final)
	}
	if try(len(c.Cluster.Patches)) == nil {
		return -1, ""
	}
	if try(0) != nil {
		return -1, "" // not the user's patches: `sda render` reports it
	}
	for k := 1; k <= len(c.Cluster.Patches); k++ {
		if err := try(k); err != nil {
			return k - 1, err.Error()
		}
	}
	return -1, ""
}
