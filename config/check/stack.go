// Package check runs the whole check sequence of a stack's configuration:
// the configuration's own rules (config.Resolve), the pinned Proxmox host
// keys (config.HostKeyProblems) and the user's Talos patches, which need
// Talos's machinery (Patches), then the warnings (config.Warnings). Stack
// is the one sequence for the program, Deploy and `sda plan`, so that they
// refuse and warn alike; it imports Talos's machinery, which package config
// does not.
package check

import (
	"errors"

	"github.com/sda-platform/sda/config"
)

// Options adapts the sequence to its caller. The zero value runs every
// check.
type Options struct {
	// Problems the caller found before resolving, such as the provider
	// settings' (config.CheckProviderConfig). They are reported after the
	// configuration's own problems, in the same error, and stop the
	// sequence as those do.
	Problems []config.Problem
	// AllowUnpinnedHostKeys passes a stack that reaches a Proxmox node
	// whose SSH host key is not pinned: `sda plan` plans such a stack and
	// lists the keys to pin (config.HostKeyProblems). The program and
	// Deploy refuse it.
	AllowUnpinnedHostKeys bool
	// SkipPatches leaves the user's Talos patches unchecked, for a caller
	// whose configuration has been through Stack already (Deploy under the
	// program).
	SkipPatches bool
}

// Stack resolves c and checks it, in order: the configuration's rules
// (config.Resolve) with opts.Problems after them; then, when those pass, the
// host-key pins and the user's Talos patches, together. It returns the
// resolved configuration, its plan, the warnings and, when a step finds
// problems, a *config.Error with every problem of that step; the warnings
// only when there is no error. The configuration is returned with its
// defaults even then, and the plan when the configuration resolved.
func Stack(c config.Config, opts Options) (config.Config, config.Plan, []config.Warning, error) {
	resolved, plan, err := config.Resolve(c)
	var invalid *config.Error
	if err != nil && !errors.As(err, &invalid) {
		return resolved, plan, nil, err
	}
	if problems := append(problemsOf(invalid), opts.Problems...); len(problems) > 0 {
		return resolved, plan, nil, &config.Error{Problems: problems}
	}
	var problems []config.Problem
	if !opts.AllowUnpinnedHostKeys {
		problems = append(problems, config.HostKeyProblems(resolved, plan)...)
	}
	if !opts.SkipPatches {
		problems = append(problems, Patches(resolved, plan)...)
	}
	if len(problems) > 0 {
		return resolved, plan, nil, &config.Error{Problems: problems}
	}
	return resolved, plan, config.Warnings(resolved, plan), nil
}

// problemsOf is a copy of the error's problems (none for a nil error), so
// appending to it leaves the error alone.
func problemsOf(e *config.Error) []config.Problem {
	if e == nil {
		return nil
	}
	return append([]config.Problem(nil), e.Problems...)
}
