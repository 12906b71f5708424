// Package sdk is the public API for writing a tidewatch trigger plugin: a
// program that tidewatch starts as a separate process and hands updates to.
// It imports nothing of tidewatch's other packages, so a plugin pulls in
// little: this package, go-plugin and gRPC.
//
// A plugin implements Trigger and calls Serve from main:
//
//	func main() { sdk.Serve(&myTrigger{}) }
//
// tidewatch finds the executable as tidewatch-trigger-<type> in its plugins
// folder (TIDEWATCH_PLUGINS_DIR), asks it to Describe itself, Configures it
// once with the options the user set as TIDEWATCH_TRIGGER_<type>_<name>_<OPTION>
// (the _FILE variants already read), then Fires it with updates, under a
// context whose deadline the plugin must honour. Each result says whether
// the update was delivered, failed for now (retried later with backoff), or
// failed for good (Permanent). Every update carries an idempotency key:
// the same key may be fired again after a crash or a timeout, and a trigger
// that can should make that harmless (an Idempotency-Key header, say).
//
// A plugin's environment is its own: tidewatch does not pass its environment
// (and so none of its secrets) to plugin processes. Log with Logger(): its
// JSON lines on stderr appear in tidewatch's log at their level, with the
// plugin's name. Write nothing to stdout: go-plugin uses it for the handshake.
package sdk
