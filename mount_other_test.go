//go:build !linux

package bigqueue

import "errors"

// mountTmpfs is Linux only; elsewhere the full-disk test is skipped.
func mountTmpfs(dir, options string) error { return errors.ErrUnsupported }

func unmountTmpfs(dir string) error { return errors.ErrUnsupported }
