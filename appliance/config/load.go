package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that sets a configuration key.
const EnvPrefix = "HEARTH_"

// Overrides are command-line values keyed by YAML path ("data_dir", "registration.open"). They are
// strings because they are parsed exactly like environment variables, so a flag and its HEARTH_*
// twin can never disagree about syntax. A nil map overrides nothing.
type Overrides map[string]string

// Load builds a configuration from, lowest precedence first: Default(), the YAML file at path
// (skipped when path is empty), HEARTH_* variables in env ("KEY=value" entries as from
// os.Environ; a later entry wins) and flags. It does not validate: call Validate, so that
// `hearth config check` can tell a file that does not parse from one that parses but is wrong.
func Load(path string, env []string, flags Overrides) (Config, error) {
	cfg := Default()
	vars := envMap(env)
	if path != "" {
		if err := loadFile(&cfg, path, vars); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	fields := leaves(&cfg)
	for _, f := range fields {
		name := EnvName(f.path)
		v, ok := vars[name]
		if !ok {
			continue
		}
		if err := f.set(v); err != nil {
			return Config{}, fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	if err := applyOverrides(fields, flags); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// EnvName is the environment variable for a YAML path: limits.rate_limit -> HEARTH_LIMITS_RATE_LIMIT.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Keys lists every settable YAML path in declaration order, for help texts and documentation.
func Keys() []string {
	cfg := Default()
	fields := leaves(&cfg)
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.path
	}
	return keys
}

func applyOverrides(fields []leaf, flags Overrides) error {
	// Sorted so that, with several bad flags, the reported one does not change from run to run.
	for _, key := range slices.Sorted(maps.Keys(flags)) {
		i := slices.IndexFunc(fields, func(f leaf) bool { return f.path == key })
		if i < 0 {
			return fmt.Errorf("override of unknown configuration key %q", key)
		}
		if err := fields[i].set(flags[key]); err != nil {
			return fmt.Errorf("value for %s: %w", key, err)
		}
	}
	return nil
}

func loadFile(cfg *Config, path string, vars map[string]string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text, err := expand(string(raw), vars)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	// A misspelt key would otherwise be silently ignored and its default used instead.
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file (or only comments) keeps the defaults
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// expand substitutes $VAR and ${VAR} from vars, so a container can write
// `server_name: "${SERVER_NAME}"`. "$$" stands for a literal "$". A variable that is not set
// at all is an error rather than an empty string: a stray "$" in a secret or a forgotten
// variable would otherwise silently produce an empty or different value.
func expand(text string, vars map[string]string) (string, error) {
	var missing []string
	out := os.Expand(text, func(name string) string {
		if name == "$" {
			return "$"
		}
		v, ok := vars[name]
		if !ok && !slices.Contains(missing, "$"+name) {
			missing = append(missing, "$"+name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("undefined environment variables %s (write $$ for a literal $)",
			strings.Join(missing, ", "))
	}
	return out, nil
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
