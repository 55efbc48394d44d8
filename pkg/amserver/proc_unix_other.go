//go:build unix && !linux

package amserver

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
