package amserver

import "syscall"

// setDeathSignal has the kernel kill the server when the thread that started
// it dies (e.g. a test binary killed by its -timeout).
func setDeathSignal(a *syscall.SysProcAttr) {
	a.Pdeathsig = syscall.SIGKILL
}
