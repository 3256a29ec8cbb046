package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// value is what an expression evaluates to: nil (none), undefined, bool, int64, float64, string,
// map[string]any or []any (decoded JSON, numbers already turned into int64/float64).
type value = any

// undefined is a missing attribute or index. Like Jinja it may flow into "default" or a test,
// but rendering it or computing with it is an error: a template that does not match the payload
// must not turn into a bogus reading.
type undefined struct{ name string }

// TemplateInput is what a template sees: the payload as text and, when it parses, as JSON.
type TemplateInput struct {
	Value     value
	ValueJSON value
}

// InputFromPayload builds the input for a state template from a raw MQTT payload.
func InputFromPayload(payload []byte) TemplateInput {
	in := TemplateInput{Value: string(payload), ValueJSON: undefined{name: "value_json"}}
	if v, err := decodeJSON(payload); err == nil {
		in.ValueJSON = v
	}
	return in
}

// decodeJSON decodes JSON keeping integers as int64, as Python's json module does.
func decodeJSON(b []byte) (value, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return fromJSON(v), nil
}

func fromJSON(v any) value {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && !strings.ContainsAny(string(x), ".eE") {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromJSON(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = fromJSON(e)
		}
		return x
	}
	return v
}

// Render evaluates the template and returns the text it produces.
func (t *Template) Render(in TemplateInput) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.text)
			continue
		}
		v, err := eval(p.expr, in)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrTemplate, t.src, err)
		}
		if u, ok := v.(undefined); ok {
			return "", fmt.Errorf("%w: %q: %s is undefined", ErrTemplate, t.src, u.name)
		}
		b.WriteString(toText(v))
	}
	return b.String(), nil
}

func eval(n node, in TemplateInput) (value, error) {
	switch n := n.(type) {
	case litNode:
		return n.v, nil
	case nameNode:
		if n.name == "value" {
			return in.Value, nil
		}
		return in.ValueJSON, nil
	case attrNode:
		x, err := eval(n.x, in)
		if err != nil {
			return nil, err
		}
		return member(x, n.name, describe(n.x)+"."+n.name), nil
	case indexNode:
		x, err := eval(n.x, in)
		if err != nil {
			return nil, err
		}
		idx, err := eval(n.idx, in)
		if err != nil {
			return nil, err
		}
		switch i := idx.(type) {
		case string:
			return member(x, i, fmt.Sprintf("%s[%q]", describe(n.x), i)), nil
		case int64:
			name := fmt.Sprintf("%s[%d]", describe(n.x), i)
			if l, ok := x.([]any); ok {
				if i < 0 {
					i += int64(len(l))
				}
				if i >= 0 && i < int64(len(l)) {
					return l[i], nil
				}
			}
			return undefined{name: name}, nil
		}
		return nil, fmt.Errorf("index must be a string or an integer, not %s", typeName(idx))
	case unaryNode:
		x, err := eval(n.x, in)
		if err != nil {
			return nil, err
		}
		if n.op == "not" {
			return !truthy(x), nil
		}
		if err := defined(x); err != nil {
			return nil, err
		}
		switch v := x.(type) {
		case int64:
			if n.op == "-" {
				return -v, nil
			}
			return v, nil
		case float64:
			if n.op == "-" {
				return -v, nil
			}
			return v, nil
		}
		return nil, fmt.Errorf("unary %s on %s", n.op, typeName(x))
	case binNode:
		return evalBinary(n, in)
	case condNode:
		c, err := eval(n.cond, in)
		if err != nil {
			return nil, err
		}
		if truthy(c) {
			return eval(n.yes, in)
		}
		return eval(n.no, in)
	case filtNode:
		x, err := eval(n.x, in)
		if err != nil {
			return nil, err
		}
		args := make([]value, len(n.args))
		for i, a := range n.args {
			if args[i], err = eval(a, in); err != nil {
				return nil, err
			}
		}
		f, _ := lookupFilter(n.name) // checked at parse time
		return f(x, args)
	}
	return nil, fmt.Errorf("internal: unknown node %T", n)
}

// describe names an expression for "is undefined" messages.
func describe(n node) string {
	switch n := n.(type) {
	case nameNode:
		return n.name
	case attrNode:
		return describe(n.x) + "." + n.name
	case indexNode:
		if l, ok := n.idx.(litNode); ok {
			if s, ok := l.v.(string); ok {
				return fmt.Sprintf("%s[%q]", describe(n.x), s)
			}
			return fmt.Sprintf("%s[%v]", describe(n.x), l.v)
		}
		return describe(n.x) + "[...]"
	}
	return "expression"
}

func member(x value, name, full string) value {
	if m, ok := x.(map[string]any); ok {
		if v, ok := m[name]; ok {
			return v
		}
	}
	return undefined{name: full}
}

func defined(v value) error {
	if u, ok := v.(undefined); ok {
		return fmt.Errorf("%s is undefined", u.name)
	}
	return nil
}

func evalBinary(n binNode, in TemplateInput) (value, error) {
	l, err := eval(n.l, in)
	if err != nil {
		return nil, err
	}
	switch n.op { // short-circuit like Python: the operand itself is the result
	case "and":
		if !truthy(l) {
			return l, nil
		}
		return eval(n.r, in)
	case "or":
		if truthy(l) {
			return l, nil
		}
		return eval(n.r, in)
	}
	r, err := eval(n.r, in)
	if err != nil {
		return nil, err
	}
	if err := defined(l); err != nil {
		return nil, err
	}
	if err := defined(r); err != nil {
		return nil, err
	}
	switch n.op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "<", ">", "<=", ">=":
		return compare(n.op, l, r)
	}
	if n.op == "+" {
		if ls, ok := l.(string); ok {
			if rs, ok := r.(string); ok {
				return ls + rs, nil
			}
		}
	}
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	if lb, ok := l.(bool); ok { // Python bools are ints
		li, lInt = b2i(lb), true
	}
	if rb, ok := r.(bool); ok {
		ri, rInt = b2i(rb), true
	}
	lf, lok := toFloat(l)
	rf, rok := toFloat(r)
	if !lok || !rok {
		return nil, fmt.Errorf("cannot compute %s %s %s (hint: add | float)", typeName(l), n.op, typeName(r))
	}
	switch n.op {
	case "+":
		if lInt && rInt {
			return li + ri, nil
		}
		return lf + rf, nil
	case "-":
		if lInt && rInt {
			return li - ri, nil
		}
		return lf - rf, nil
	case "*":
		if lInt && rInt {
			return li * ri, nil
		}
		return lf * rf, nil
	case "/":
		if rf == 0 {
			return nil, errors.New("division by zero")
		}
		return lf / rf, nil
	case "//":
		if rf == 0 {
			return nil, errors.New("division by zero")
		}
		if lInt && rInt {
			return int64(math.Floor(float64(li) / float64(ri))), nil
		}
		return math.Floor(lf / rf), nil
	case "%":
		if rf == 0 {
			return nil, errors.New("division by zero")
		}
		if lInt && rInt {
			m := li % ri
			if m != 0 && (m < 0) != (ri < 0) {
				m += ri
			}
			return m, nil
		}
		return lf - math.Floor(lf/rf)*rf, nil
	}
	return nil, fmt.Errorf("unknown operator %s", n.op)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// toFloat converts numbers (and bools) only; strings need an explicit | float, as in Jinja.
func toFloat(v value) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		return float64(b2i(x)), true
	}
	return 0, false
}

func equal(l, r value) bool {
	lf, lok := toFloat(l)
	rf, rok := toFloat(r)
	if lok && rok {
		return lf == rf
	}
	ls, lok := l.(string)
	rs, rok := r.(string)
	if lok && rok {
		return ls == rs
	}
	return l == nil && r == nil
}

func compare(op string, l, r value) (value, error) {
	var c int
	lf, lok := toFloat(l)
	rf, rok := toFloat(r)
	ls, lsok := l.(string)
	rs, rsok := r.(string)
	switch {
	case lok && rok:
		switch {
		case lf < rf:
			c = -1
		case lf > rf:
			c = 1
		}
	case lsok && rsok:
		c = strings.Compare(ls, rs)
	default:
		return nil, fmt.Errorf("cannot compare %s %s %s", typeName(l), op, typeName(r))
	}
	switch op {
	case "<":
		return c < 0, nil
	case ">":
		return c > 0, nil
	case "<=":
		return c <= 0, nil
	}
	return c >= 0, nil
}

func truthy(v value) bool {
	switch x := v.(type) {
	case nil, undefined:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case map[string]any:
		return len(x) > 0
	case []any:
		return len(x) > 0
	}
	return true
}

func typeName(v value) string {
	switch v.(type) {
	case nil:
		return "none"
	case undefined:
		return "undefined"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// toText renders a value the way Jinja (Python str) does, so "{{ 21.0 }}" is "21.0".
func toText(v value) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		s := strconv.FormatFloat(x, 'f', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return s
	case string:
		return x
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

type filterFunc func(x value, args []value) (value, error)

// lookupFilter returns one of the closed set of supported filters.
func lookupFilter(name string) (filterFunc, bool) {
	switch name {
	case "float":
		return filterFloat, true
	case "int":
		return filterInt, true
	case "round":
		return filterRound, true
	case "default", "d":
		return filterDefault, true
	case "abs":
		return filterAbs, true
	case "lower":
		return func(x value, _ []value) (value, error) { return strings.ToLower(toTextDefined(x)), defined(x) }, true
	case "upper":
		return func(x value, _ []value) (value, error) { return strings.ToUpper(toTextDefined(x)), defined(x) }, true
	case "string":
		return func(x value, _ []value) (value, error) { return toTextDefined(x), defined(x) }, true
	}
	return nil, false
}

func toTextDefined(x value) string {
	if _, ok := x.(undefined); ok {
		return ""
	}
	return toText(x)
}

// filterFloat follows Home Assistant, not plain Jinja: a value that is not a number is an error
// unless a default is given ("| float(0)").
func filterFloat(x value, args []value) (value, error) {
	if len(args) > 1 {
		return nil, errors.New("float takes at most one argument (the default)")
	}
	if f, ok := parseNumber(x); ok {
		return f, nil
	}
	if len(args) == 1 {
		return args[0], nil
	}
	return nil, fmt.Errorf("float got %s %q, which is not a number", typeName(x), toTextDefined(x))
}

func filterInt(x value, args []value) (value, error) {
	if len(args) > 2 {
		return nil, errors.New("int takes at most two arguments (default, base)")
	}
	if i, ok := x.(int64); ok {
		return i, nil
	}
	if f, ok := parseNumber(x); ok && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return int64(f), nil // truncates toward zero like Python int()
	}
	if len(args) >= 1 {
		return args[0], nil
	}
	return nil, fmt.Errorf("int got %s %q, which is not a number", typeName(x), toTextDefined(x))
}

func parseNumber(x value) (float64, bool) {
	if f, ok := toFloat(x); ok {
		return f, true
	}
	if s, ok := x.(string); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return f, err == nil
	}
	return 0, false
}

// filterRound implements round(precision=0, method='common'|'floor'|'ceil'); it returns a float
// as Jinja does.
func filterRound(x value, args []value) (value, error) {
	if err := defined(x); err != nil {
		return nil, err
	}
	f, ok := toFloat(x)
	if !ok {
		return nil, fmt.Errorf("round needs a number, got %s (hint: add | float first)", typeName(x))
	}
	prec := int64(0)
	method := "common"
	if len(args) > 2 {
		return nil, errors.New("round takes at most two arguments")
	}
	if len(args) >= 1 {
		p, ok := args[0].(int64)
		if !ok || p < 0 || p > 15 {
			return nil, errors.New("round precision must be an integer between 0 and 15")
		}
		prec = p
	}
	if len(args) == 2 {
		m, ok := args[1].(string)
		if !ok {
			return nil, errors.New("round method must be a string")
		}
		method = m
	}
	scale := math.Pow(10, float64(prec))
	switch method {
	case "common":
		return math.Round(f*scale) / scale, nil
	case "floor":
		return math.Floor(f*scale) / scale, nil
	case "ceil":
		return math.Ceil(f*scale) / scale, nil
	}
	return nil, fmt.Errorf("round method %q is not common, floor or ceil", method)
}

// filterDefault replaces an undefined value (or, with a true second argument, any false one).
func filterDefault(x value, args []value) (value, error) {
	if len(args) == 0 || len(args) > 2 {
		return nil, errors.New("default takes one or two arguments")
	}
	_, undef := x.(undefined)
	if undef || len(args) == 2 && truthy(args[1]) && !truthy(x) {
		return args[0], nil
	}
	return x, nil
}

func filterAbs(x value, _ []value) (value, error) {
	switch v := x.(type) {
	case int64:
		if v < 0 {
			return -v, nil
		}
		return v, nil
	case float64:
		return math.Abs(v), nil
	}
	if err := defined(x); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("abs needs a number, got %s", typeName(x))
}
