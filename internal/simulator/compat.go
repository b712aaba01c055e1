package simulator

import (
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
)

// The names below are what automation/recover_test.go used from this
// package before the simulator was split into subject packages; they stay
// as aliases until that file imports engine and proxmox itself (the
// automation package is maintained separately). New code uses engine and
// proxmox directly.
type (
	// Deprecated: use engine.World.
	World = engine.World
	// Deprecated: use engine.WorldNode.
	WorldNode = engine.WorldNode
	// Deprecated: use engine.Faults.
	Faults = engine.Faults
)

const (
	// Deprecated: use engine.StateDirEnv.
	StateDirEnv = engine.StateDirEnv
	// Deprecated: use proxmox.TokenVM.
	TokenVM = proxmox.TokenVM
	// Deprecated: use proxmox.CreateTaskMethod.
	CreateTaskMethod = proxmox.CreateTaskMethod
)

var (
	// Deprecated: use engine.ReadState.
	ReadState = engine.ReadState
	// Deprecated: use engine.WriteWorld.
	WriteWorld = engine.WriteWorld
	// Deprecated: use engine.WriteFaults.
	WriteFaults = engine.WriteFaults
	// Deprecated: use engine.DefaultWorld.
	DefaultWorld = engine.DefaultWorld
)
