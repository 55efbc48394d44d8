//go:build !unix

package serverproc

import (
	"errors"
	"os/exec"
	"syscall"
)

func setProcAttr(*exec.Cmd) {}

func signalGroup(int, syscall.Signal) error {
	return errors.New("serverproc: process signals are not supported on this platform")
}

// Placeholders: signalGroup fails on this platform anyway.
const (
	sigStop = syscall.Signal(-1)
	sigCont = syscall.Signal(-2)
)
