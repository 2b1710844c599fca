// Package sasl implements the server side of the SASL mechanisms xmppd
// offers (RFC 4422, RFC 6120 §6): SCRAM-SHA-1, SCRAM-SHA-256 and
// SCRAM-SHA-512 with and without channel binding (RFC 5802, RFC 7677,
// channel binding types tls-exporter from RFC 9266, and tls-unique (TLS 1.2
// only) and tls-server-end-point from RFC 5929), and PLAIN (RFC 4616). Which
// types a connection has, and why -PLUS stays offered on TLS 1.3 where
// tls-unique-only clients cannot use it, is explained in
// docs/channel-binding.md.
//
// Passwords are never stored: only the SCRAM salted keys (Credentials). A
// SCRAM exchange with stored credentials needs no PBKDF2 on the server;
// PLAIN needs one (VerifyPassword).
//
// The package is pure: no goroutines, no global mutable state, no I/O other
// than the io.Reader of randomness handed in, and no logging. Every error it
// returns is a *Failure naming the RFC 6120 §6.5 condition to send.
package sasl
