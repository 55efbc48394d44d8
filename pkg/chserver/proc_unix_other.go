//go:build unix && !linux

package chserver

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
