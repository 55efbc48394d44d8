//go:build !unix

package amserver

import (
	"errors"
	"os/exec"
	"syscall"
)

func setProcAttr(*exec.Cmd) {}

func signalGroup(int, syscall.Signal) error {
	return errors.New("amserver: process signals are not supported on this platform")
}
