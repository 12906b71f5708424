// Package notify is the built-in notify trigger: it sends each update (in
// batch mode, each run's updates together) as a message to one or more chat
// and push services, through shoutrrr service URLs
// (github.com/nicholas-fedor/shoutrrr, the maintained fork): Telegram,
// Slack, Discord, Teams, Matrix, Gotify, ntfy, Pushover, Mattermost,
// Rocket.Chat, Zulip, Google Chat, a generic webhook, and more. tidewatch
// serves it with `tidewatch trigger serve notify`; users configure an
// instance as TIDEWATCH_TRIGGER_NOTIFY_<name>_<OPTION>.
//
// # Options
//
//	URLS         required, secret  service URLs separated by spaces or newlines (URLS_FILE: one per
//	                               line, # comments); errors, logs, details and metrics name a URL
//	                               only as scheme#position ("telegram#2")
//	TITLE        see DefaultTitle  title of a message with one update
//	BODY         see DefaultBody   body of a message with one update
//	BATCH_TITLE  "N container updates"
//	BATCH_BODY   one line per update, at most 20, then "… and N more"
//	TIMEOUT      10s               the longest sending one message to one service may take
//
// Templates are sdk message templates (text/template over sdk.Message, with
// sdk.Funcs). A message of one update uses TITLE and BODY, one of several
// BATCH_TITLE and BATCH_BODY. A service without titles (Rocket.Chat, Google
// Chat, Signal, …) gets the title as the body's first line.
//
// # Results
//
// Every service gets the message, in parallel; one that fails does not
// stop the others. An update is delivered when every service took it; else
// its result is a retryable error naming the services that failed, and its
// detail says which took it ("sent to gotify#1; failed: telegram#2"). The
// process remembers which services took which update (by the delivery's
// key, up to 100,000 of them): a retry sends only to the services that did
// not, even when the retried batch is made up anew. A plugin restart forgets
// that, and a service whose answer was lost (a timeout after it took the
// message) gets it again: at least once, as no shoutrrr service takes an
// idempotency key. Each result also reports each service's outcome of the
// attempt (sdk.Result.Services), which tidewatch counts in
// tidewatch_trigger_service_deliveries_total.
//
// Configure contacts no service: URLs are checked by shoutrrr's own parser.
// A Matrix URL with a user logs in at its first message; its messages are
// sent one at a time (shoutrrr's Matrix client is not safe for concurrent
// use). shoutrrr takes no context: a send that overruns TIMEOUT or the
// delivery's deadline is abandoned (it ends with its own client's timeout)
// and the update retried.
package notify
