// Package email is tidewatch's built-in email trigger: it sends a mail per
// update, or one per batch, through an SMTP server, with
// github.com/wneessen/go-mail. It runs as a plugin process, like a custom
// trigger, and is configured with TIDEWATCH_TRIGGER_EMAIL_<name>_<OPTION>.
//
// Defaults: TLS=starttls on port 587 (465 for TLS=tls, SMTPS; 25 for
// TLS=none), the system's CAs (TLS_CAFILE trusts a private CA or a
// self-signed server instead), AUTH=plain when USERNAME is set, a 30s
// TIMEOUT per message, and default subject, text and HTML templates (see
// DefaultSubject, DefaultBody, DefaultHTML). AUTH=plain and login are
// refused over TLS=none, so that a password never crosses the network in
// clear.
//
// Templates: SUBJECT and BODY are Go text/template over sdk.Message (the
// fixed data model of every trigger); HTML is Go html/template over the same
// data, so that container names, labels and details are escaped; HTML=none
// sends text only. A template that does not parse, or uses a field the model
// does not have, is an error at start-up.
//
// Each message carries a Message-ID derived from the keys of the updates it
// reports (MessageID) and their keys in X-Tidewatch-Key: a message sent again
// after a crash or a timeout has the same Message-ID, so mail clients and
// servers that drop duplicates do so.
//
// Results: connection failures, timeouts and 4xx replies are retried; 5xx
// replies (a refused password, sender or recipient), a certificate that does
// not verify, a server without STARTTLS (with TLS=starttls) or without the
// AUTH mechanism asked for, are permanent. The password is never logged, nor
// put in errors; go-mail's debug log, which would show the conversation, is
// never turned on.
package email
