package bigqueue

import "golang.org/x/sys/unix"

// mountTmpfs mounts a tmpfs with the given options on dir (needs root).
func mountTmpfs(dir, options string) error {
	return unix.Mount("tmpfs", dir, "tmpfs", 0, options)
}

// unmountTmpfs unmounts dir, detaching it if it is busy.
func unmountTmpfs(dir string) error {
	if err := unix.Unmount(dir, 0); err != nil {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		return err
	}
	return nil
}
