package chserver

// SetPickPorts replaces the port picker and returns a func restoring it.
func SetPickPorts(f func(n int) ([]int, error)) (restore func()) {
	old := pickPorts
	pickPorts = f
	return func() { pickPorts = old }
}

// PickPorts is the real port picker.
var PickPorts = pickPorts

// SetSystemUsersConfig replaces the system users.xml path and returns a func
// restoring it.
func SetSystemUsersConfig(path string) (restore func()) {
	old := systemUsersConfig
	systemUsersConfig = path
	return func() { systemUsersConfig = old }
}
