package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrDaemonRunning is returned by Serve when the socket path already accepts
// connections: another vswitchd owns it.
var ErrDaemonRunning = errors.New("another vswitchd is running")

// maxSocketPath is the usable length of sockaddr_un.sun_path on Linux.
const maxSocketPath = 107

// listenUnix creates a unix socket at path whose mode is never wider than
// mode, not even for an instant: it binds inside a fresh 0700 directory,
// chmods there, then renames into place (rename is atomic and also replaces
// a stale socket file). A process-wide umask change would race with every
// other goroutine that creates files.
func listenUnix(path string, mode os.FileMode) (*net.UnixListener, os.FileInfo, error) {
	if mode&^fs.ModePerm != 0 {
		return nil, nil, fmt.Errorf("listen api socket: mode %#o is not a permission mode", uint32(mode))
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create api socket dir: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, nil, err
	}
	tmpDir, err := os.MkdirTemp(dir, ".vs")
	if err != nil {
		return nil, nil, fmt.Errorf("create api socket temp dir: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	if len(tmp) > maxSocketPath {
		return nil, nil, fmt.Errorf("listen api socket: path %s is too long for a unix socket (%d bytes while binding, limit %d)", path, len(tmp), maxSocketPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("listen api socket: %w", err)
	}
	// The listener's own unlink would aim at the temp name; Server.Close
	// removes the real path instead, and only if it is still ours.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		ln.Close()
		return nil, nil, err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(fmt.Errorf("chmod api socket: %w", err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("rename api socket into place: %w", err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("stat api socket: %w", err))
	}
	return ln, fi, nil
}

// removeStale removes a socket file left by a daemon that died, and refuses
// to touch one that still answers or anything that is not a socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat api socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listen api socket: %s exists and is not a socket; refusing to replace it", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("listen api socket: %w: %s accepts connections", ErrDaemonRunning, path)
	}
	// Only "connection refused" proves nobody listens; anything else (a full
	// backlog, no permission) might be a live daemon, so leave it alone.
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe api socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale api socket: %w", err)
	}
	return nil
}
