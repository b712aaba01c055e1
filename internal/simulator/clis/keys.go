package clis

import "github.com/sda-platform/sda/internal/simulator/engine"

// The properties the rules of this package read, each declared once (see
// engine.Key): resource inputs and outputs, function arguments and the
// provider configuration, by their paths in the real provider's schema.
var (
	keyUpdate                 = engine.AnyKey("update")
	keyAddPreviousOutputInEnv = engine.AnyKey("addPreviousOutputInEnv")
	keyConnectionHost         = engine.StrKey("connection.host")
	keyConnectionHostKey      = engine.StrKey("connection.hostKey")
	keyDir                    = engine.StrKey("dir")
	keyEnvironment            = engine.MapKey("environment")
	keyInterpreter            = engine.StrListKey("interpreter")
	keyStderr                 = engine.StrKey("stderr")
	keyStdout                 = engine.StrKey("stdout")
)
