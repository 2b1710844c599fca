// Package debugpage holds the operator's page of the live actor tree (GET /debug/actors.html), embedded in the
// binary: plain HTML, CSS and JavaScript, no build step, no external resources.
package debugpage

import _ "embed"

// HTML is the page. Its script fetches /debug/actors as JSON (with the bearer token the user typed, when the
// server asks for one) and renders it.
//
//go:embed index.html
var HTML []byte
