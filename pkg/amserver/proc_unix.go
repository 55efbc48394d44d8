//go:build unix

package amserver

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server into its own process group, so signals reach
// it and none from the terminal do, and (on Linux) has the kernel kill it
// when the process that started it dies.
func setProcAttr(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setDeathSignal(cmd.SysProcAttr)
}

// signalGroup signals the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
