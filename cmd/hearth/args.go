package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/hearth-home/hearth/appliance/config"
)

// newFlagSet makes a leaf command's flag set. Usage goes to stderr like every Go tool's, so
// that stdout carries only results (a user ID, a token) that scripts capture.
func newFlagSet(d *deps, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("hearth "+name, flag.ContinueOnError)
	fs.SetOutput(d.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: hearth %s %s\n\n%s\n", name, synopsis, help)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseArgs parses flags wherever they appear and returns exactly one positional argument per
// name. The flag package stops at the first non-flag, but `hearth user add alice --admin` is
// how people type it, so parsing resumes after each positional; "--" ends flag parsing.
func parseArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage // the flag package has printed the problem and the usage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < len(names):
		return nil, usagef(fs, "missing %s", names[len(pos)])
	case len(pos) > len(names):
		return nil, usagef(fs, "unexpected argument %q", pos[len(names)])
	}
	for i, p := range pos {
		if p == "" {
			return nil, usagef(fs, "%s is empty", names[i])
		}
	}
	return pos, nil
}

// usagef reports a command-line mistake with the command's usage and returns errUsage.
func usagef(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "%s: %s\n\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

// overrideFlag is a flag that sets one configuration key, above file and environment.
type overrideFlag struct {
	name, key, usage string
}

func overrideFlags() []overrideFlag {
	return []overrideFlag{
		{"data", "data_dir", "data `directory` (store, keys, control socket)"},
		{"listen", "listen", "client API `address` host:port"},
		{"server-name", "server_name", "Matrix server `name`"},
		{"federation-listen", "federation_listen", "federation `address` host:port"},
		{"tls-cert", "tls_cert", "federation TLS certificate `file`"},
		{"tls-key", "tls_key", "federation TLS private key `file`"},
		{"tls-mode", "tls_mode", "federation certificate `source`: auto, acme, files, localca, ca, selfsigned"},
		{"tls-extra-ca", "tls_extra_ca", "comma-separated PEM `files` of CAs trusted for outbound federation"},
		{"tls-lan-names", "tls_lan_names", "comma-separated LAN `names` and IPs of the local CA's certificate"},
		{"acme-ca", "acme_ca", "ACME directory `URL` (default Let's Encrypt)"},
		{"acme-email", "acme_email", "ACME account e-mail `address`"},
		{"acme-domains", "acme_domains", "comma-separated `names` to get ACME certificates for (default: server name)"},
	}
}

// configFlags collects --config and the override flags of one command.
type configFlags struct {
	path      string
	overrides config.Overrides
}

// addConfigFlags registers --config and the named override flags, or all of them if none
// are named.
func addConfigFlags(fs *flag.FlagSet, names ...string) *configFlags {
	cf := &configFlags{overrides: config.Overrides{}}
	fs.StringVar(&cf.path, "config", "", "YAML configuration `file` (default $HEARTH_CONFIG; "+
		"without one, defaults and HEARTH_* variables apply)")
	for _, f := range overrideFlags() {
		if len(names) > 0 && !slices.Contains(names, f.name) {
			continue
		}
		fs.Func(f.name, f.usage+" (config key "+f.key+")", func(v string) error {
			cf.overrides[f.key] = v
			return nil
		})
	}
	return cf
}

// load reads the configuration the way serve does, without validating it.
func (cf *configFlags) load(d *deps) (config.Config, error) {
	path := cf.path
	if path == "" {
		path = lookupEnv(d.environ, "HEARTH_CONFIG")
	}
	return config.Load(path, d.environ, cf.overrides)
}

// loadValid is load followed by Validate.
func (cf *configFlags) loadValid(d *deps) (config.Config, error) {
	cfg, err := cf.load(d)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// lookupEnv finds key in a "KEY=value" list; the last entry wins, as in os/exec.
func lookupEnv(env []string, key string) string {
	for _, kv := range slices.Backward(env) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
