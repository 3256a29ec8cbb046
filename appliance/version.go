package appliance

// version is set at link time (-ldflags "-X github.com/hearth-home/hearth/appliance.version=...").
// It is the one package-level variable: the linker can only write to a variable.
var version = "dev"

// Version reports the build version.
func Version() string { return version }
