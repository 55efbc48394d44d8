package serverproc

import "syscall"

// setDeathSignal has the kernel kill the server when the process that
// started it dies (e.g. a test binary killed by its -timeout), so no server
// outlives its test. Strictly, the signal follows the death of the OS thread
// that forked the server; Go keeps its threads alive unless a goroutine
// exits while locked to one, which neither this package nor its callers do.
func setDeathSignal(a *syscall.SysProcAttr) {
	a.Pdeathsig = syscall.SIGKILL
}
