//go:build !linux

package actors

// canPark: without a portable non-blocking peek the reader keeps blocking in Read (see reader_park_linux.go).
const canPark = false

func peekReadable(uintptr) bool { return true }
