//go:build unix

package serverproc

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server into its own process group and, where the
// platform can, has it killed when its parent dies.
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

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)
