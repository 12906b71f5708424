// Package rollout is what every trigger that deploys shares (compose,
// plain containers, Swarm services): the smoke checks run after the health
// gate (an HTTP GET answering 2xx, a TCP connect, each retried until a
// timeout), and knowing which container tidewatch itself runs in, so that
// no trigger recreates it from inside. It is a library of the triggers, not
// a trigger: it imports no trigger.
package rollout
