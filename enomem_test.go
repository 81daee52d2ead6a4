package bigqueue

import "golang.org/x/sys/unix"

var errENOMEMForTest error = unix.ENOMEM
