// Package mqtt is the built-in mqtt trigger: Home Assistant update entities
// for every container tidewatch watches, over MQTT discovery, whose Install
// button applies the update through tidewatch's own API.
//
// A trigger plugin is a separate process that tidewatch only fires with
// deliveries, yet Home Assistant needs every container's state and a way
// back. So the trigger is a client of tidewatch's public API (API_URL,
// default http://127.0.0.1:8080, with API_TOKEN, a token of
// TIDEWATCH_SERVER_API_TOKENS: name it mqtt and the history names
// token:mqtt): it follows GET /api/events, reads GET /api/containers after
// each event (and every RESYNC), and presses Install with
// POST /api/updates/{id}/apply through the first deploying trigger
// (DEPLOY_TRIGGERS, or every one the API lists) that accepts it: the
// trigger's policy is checked there, as for the UI. Its Fire publishes the
// state an update event gives at once, so that the entity moves even before
// the API is read.
//
// Topics: <TOPIC>/status (online, offline as the last will, both
// retained); per container <TOPIC>/<host>/<name>/state (the update
// entity's JSON state), …/attributes (where it runs, install_result), and
// …/install (Install; a retained message there is ignored); discovery at
// <DISCOVERY_PREFIX>/update/tidewatch_<instance>/<host>_<name>/config,
// retained, and emptied when the container goes (also after a restart: the
// trigger subscribes to its own discovery topics to learn them).
package mqtt
