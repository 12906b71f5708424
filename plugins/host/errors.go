package host

import "errors"

// Errors made by the host itself, not by a plugin. Results and errors of a
// Plugin wrap them, so that callers (and tests) can tell them apart from a
// trigger's own failures with errors.Is.
var (
	// ErrExited: the plugin's process exited (crashed) before or during a call.
	ErrExited = errors.New("plugin process exited")
	// ErrCutOff: a call overran its context's deadline and the process was killed.
	ErrCutOff = errors.New("plugin cut off")
	// ErrRestartLimit: the process was restarted too often in the last minute.
	ErrRestartLimit = errors.New("plugin restarted too often")
	// ErrChecksum: the executable's SHA-256 differs from its pin.
	ErrChecksum = errors.New("plugin checksum mismatch")
	// ErrClosed: the Plugin or its Host was closed.
	ErrClosed = errors.New("plugin closed")
)
