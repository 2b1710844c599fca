//go:build unix

package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked reports a data directory that another process holds (LockDataDir).
var ErrLocked = errors.New("storage: the data directory is in use by another process")

// LockFile is the name of the lock file in the data directory.
const LockFile = "xmppd.lock"

// LockDataDir takes an advisory flock(2) on dir/xmppd.lock: shared for a running server (so the operator's
// `xmppd user …` commands, which take no lock, keep working beside it), exclusive for what must not run beside
// a server (`xmppd import`: the server caches rosters and queues in its actors and would not see, or would
// overwrite, what the import writes). It never waits: ErrLocked if the other kind is held. The lock goes with
// the process (also on kill -9); release closes it.
func LockDataDir(dir string, exclusive bool) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", ErrLocked, f.Name())
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
