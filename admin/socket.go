package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// maxSocketPath is the longest unix socket path Linux takes: sun_path holds
// 108 bytes, the last one the terminating NUL.
const maxSocketPath = 107

// socketListener is the admin API's unix socket. Closing it removes the
// socket file, unless another file has taken its place since.
type socketListener struct {
	net.Listener
	path string
	file os.FileInfo
}

// listenSocket listens on a unix socket at path that only this process's
// user can connect to (mode 0600). A socket left at path by a process that
// is gone is replaced; any other file, or a socket something still answers
// on, is an error.
func listenSocket(path string) (*socketListener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close() // net.FileListener keeps a copy
	// bind(2) creates the file with the process's umask; connect(2) is
	// refused until listen(2). The mode is set in between, so no other user
	// can ever connect.
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		return nil, fmt.Errorf("admin socket %s: bind: %w", path, err)
	}
	file, err := os.Lstat(path)
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err == nil {
		err = syscall.Listen(fd, syscall.SOMAXCONN)
	}
	var ln net.Listener
	if err == nil {
		ln, err = net.FileListener(f)
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return &socketListener{Listener: ln, path: path, file: file}, nil
}

// removeStaleSocket removes the socket at path if nothing listens on it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("admin socket %s: %w", path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("admin socket %s: the path exists and is not a socket (%s); not replacing it", path, fi.Mode().Type())
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("admin socket %s: another process is serving on it (another kdnsd on the same data dir?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin socket %s: cannot tell whether a process is serving on it: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("admin socket %s: remove the one left by an earlier run: %w", path, err)
	}
	return nil
}

func (l *socketListener) Close() error {
	err := l.Listener.Close()
	if fi, statErr := os.Lstat(l.path); statErr == nil && os.SameFile(fi, l.file) {
		os.Remove(l.path)
	}
	return err
}
