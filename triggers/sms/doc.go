// Package sms is the built-in SMS trigger: it sends each update (in batch
// mode, each run's updates together) as a text message to one or more
// phone numbers through the Twilio Messages API, or a gateway that speaks
// it. tidewatch serves it with `tidewatch trigger serve sms`; users
// configure an instance as TIDEWATCH_TRIGGER_SMS_<name>_<OPTION>.
//
// # Options
//
//	ACCOUNT_SID  required          the account: "AC" and 32 hex digits
//	AUTH_TOKEN   required, secret  its auth token (or, with an API key, the key's secret)
//	FROM         required          an E.164 number ("+15551234567"), a messaging service SID ("MG…", sent
//	                               as MessagingServiceSid), or an alphanumeric sender ID (up to 11 characters)
//	TO           required          E.164 numbers separated by commas; duplicates are dropped
//	API_URL      https://api.twilio.com  the base URL (another region, a compatible gateway, a test server);
//	                                     https, or http only to a loopback address (the token would go in clear)
//	TEMPLATE     DefaultTemplate   the message template
//	MAX_LENGTH   1600              the longest body, 20 to 1600 characters (Twilio's limit, counted in UTF-16 units)
//
// # Request
//
// For each recipient, one
//
//	POST {API_URL}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json
//	Authorization: Basic base64(ACCOUNT_SID:AUTH_TOKEN)
//	Content-Type: application/x-www-form-urlencoded
//
//	To=+15551111111&From=+15550000000&Body=tidewatch: web 1.0.0 -> 1.1.0 (minor) on local
//
// (MessagingServiceSid instead of From for an "MG" sender).
//
// # Message
//
// The default template writes one short line in plain ASCII ("->", not
// "→"), which keeps the message in the GSM-7 alphabet: 160 characters a
// segment instead of 70. A body longer than MAX_LENGTH is truncated, not
// split: it is cut at a character boundary and ends with "..." (also ASCII),
// so a message is always one API request and one delivery to track.
//
// # Results and retries
//
// 2xx from every recipient is delivered; the detail lists each recipient and
// its message SID. 408, 429, 5xx and network errors are retryable; other
// answers (a 4xx, a redirect) are permanent, quoting Twilio's error code
// and message ("HTTP 400: Twilio error 21211: The 'To' number … is not a
// valid phone number."). When recipients fail differently, the update is
// retryable if any failed retryably, else permanent.
//
// A retry does not text again the recipients that already got the message:
// the plugin process remembers, in memory, which recipients accepted which
// key (the delivery's idempotency key; for a batch, sdk.Key of its
// updates), up to 10,000 entries. Twilio's Messages API has no idempotency
// key, so this is at-least-once: should the plugin process restart between
// a send and the retry (a crash, a cut-off, tidewatch restarting), or
// should Twilio accept a message whose answer is then lost, a recipient may
// get the message twice.
package sms
