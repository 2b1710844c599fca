package actors

import "syscall"

// canPark: the platform can tell whether a socket has bytes without reading them (MSG_PEEK|MSG_DONTWAIT).
const canPark = true

// peekReadable is the syscall.RawConn read callback of a parked reader: true (stop waiting) when the socket has
// a byte, its end (0) or an error to report, false (wait for readiness) when it would block. Peeking rather than
// trusting the first wake-up keeps an edge-triggered readiness that came before the wait from being lost.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN && err != syscall.EINTR
}
