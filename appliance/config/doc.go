// Package config is Hearth's typed configuration: defaults, YAML file, HEARTH_* environment
// variables and command-line flags, validated as a whole and saved atomically.
package config
