// Package host runs trigger plugins as separate processes through
// hashicorp/go-plugin (gRPC only) and hands them out as sdk.Trigger values,
// so that the dispatcher never knows whether a trigger is built in or custom,
// and a trigger that crashes, hangs or leaks cannot take tidewatch down.
//
// Built-in triggers re-execute the tidewatch binary (Builtins); custom ones
// are executables named tidewatch-trigger-<type> in the plugins folder
// (Discover). Every process:
//
//   - is started when first needed (the first call on its Plugin), with
//     AutoMTLS on and SkipHostEnv set: it gets Spec.Env and nothing of
//     tidewatch's own environment, so none of its secrets;
//   - is refused when Spec.SHA256 is set and the binary's checksum differs
//     (TIDEWATCH_PLUGIN_<TYPE>_SHA256, see PinVariable);
//   - is restarted after a crash on the next call, its configuration replayed
//     first, at most Options.MaxRestarts times a minute (default 5);
//   - is killed when a Fire overruns its context's deadline ("cut off"); the
//     call's updates then get retryable results and the next call starts a
//     fresh process;
//   - logs into tidewatch's slog logger with keys plugin=<type> and
//     instance=<name>, each JSON line of its stderr (sdk.Logger) at its level;
//   - is stopped by Plugin.Close or Host.Close;
//   - dies with tidewatch: on Linux the kernel kills it (a parent-death
//     signal, SIGKILL) when tidewatch ends in any way, SIGKILL and OOM kills
//     included, so that a restarted tidewatch finds none still acting. The
//     signal follows the OS thread that started the process, so each process
//     is started from a thread held (locked) until the process is stopped.
//
// Errors the host makes itself (not the plugin's) wrap ErrExited, ErrCutOff,
// ErrRestartLimit, ErrChecksum or ErrClosed.
package host
