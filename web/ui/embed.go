// Package ui holds tidewatch's web page: static HTML, CSS and a little plain
// JavaScript over the public REST API (/api/...), embedded in the binary.
//
// There is no build step, no framework and nothing fetched from elsewhere:
// the page runs under a strict Content-Security-Policy
// (default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;
// connect-src 'self'), so it has no inline script or style. It keeps no secret
// in the browser's storage. The package web serves FS at "/".
package ui

import "embed"

// FS holds the page: index.html, app.js and style.css at its root.
//
//go:embed index.html app.js style.css
var FS embed.FS
