package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// leaf is one settable value of Config, addressed by its YAML path. Environment variables and
// flags are found by walking the yaml tags, so a new Config field gets its HEARTH_* variable
// without anyone remembering to add it.
type leaf struct {
	path  string        // "limits.rate_limit"
	value reflect.Value // addressable field inside the Config being loaded
}

var durationType = reflect.TypeFor[time.Duration]()

// leaves lists the scalar fields of cfg in declaration order.
func leaves(cfg *Config) []leaf {
	var out []leaf
	walk(reflect.ValueOf(cfg).Elem(), "", &out)
	return out
}

func walk(v reflect.Value, prefix string, out *[]leaf) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() != reflect.String {
			continue // lists of records (devices.hue, devices.drones ...) come from the YAML file only
		}
		isStruct := fv.Kind() == reflect.Struct && fv.Type() != durationType
		if isStruct && hasOption(opts, "inline") {
			walk(fv, prefix, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name) // yaml.v3's own default for an untagged field
		}
		if isStruct {
			walk(fv, prefix+name+".", out)
			continue
		}
		*out = append(*out, leaf{path: prefix + name, value: fv})
	}
}

func hasOption(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// set parses s into the field with the same syntax the YAML file accepts for it.
func (l leaf) set(s string) error {
	v := l.value
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		// Lists of strings (tls_extra_ca, acme_domains) are comma-separated in flags and
		// environment variables; an empty string is an empty list.
		var list []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list).Convert(v.Type()))
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.CanInt():
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case v.CanUint():
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case v.CanFloat():
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("a %s cannot be set from a string", v.Type())
	}
	return nil
}
