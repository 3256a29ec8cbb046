package mqtt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Template is a parsed Home Assistant value/command template. Only the subset real devices
// publish is understood: literal text with {{ expression }} parts, where an expression is made
// of value, value_json, attribute and index access, numbers, strings, arithmetic, comparisons,
// and/or/not, "a if c else b", and the filters float, int, round, default (d), abs, lower, upper,
// string. Anything else ({% blocks %}, function calls, unknown filters) is rejected at parse time
// with an error that names it, so a device config that needs a full Jinja engine fails loudly
// instead of producing wrong values.
type Template struct {
	src   string
	parts []tplPart
}

// tplPart is literal text or an expression.
type tplPart struct {
	text string
	expr node
}

// ErrTemplate is wrapped by every parse and evaluation error.
var ErrTemplate = errors.New("template")

const (
	maxTemplateLen   = 4096 // device templates are one-liners; anything longer is not a device template
	maxTemplateDepth = 32   // bounds recursion on nested parentheses and filters
)

// ParseTemplate parses src. Callers decide what a missing (empty) template means; an empty src
// parses to a template that renders "".
func ParseTemplate(src string) (*Template, error) {
	if len(src) > maxTemplateLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrTemplate, maxTemplateLen)
	}
	t := &Template{src: src}
	rest := src
	for rest != "" {
		i := firstTag(rest)
		if i < 0 {
			t.parts = append(t.parts, tplPart{text: rest})
			break
		}
		switch rest[i+1] {
		case '%':
			return nil, fmt.Errorf("%w: %q: statement blocks ({%% ... %%}) are not supported", ErrTemplate, src)
		case '#':
			return nil, fmt.Errorf("%w: %q: comments ({# ... #}) are not supported", ErrTemplate, src)
		}
		if i > 0 {
			t.parts = append(t.parts, tplPart{text: rest[:i]})
		}
		end := strings.Index(rest[i+2:], "}}")
		if end < 0 {
			return nil, fmt.Errorf("%w: %q: unclosed {{", ErrTemplate, src)
		}
		body := rest[i+2 : i+2+end]
		if strings.HasPrefix(body, "-") || strings.HasSuffix(body, "-") {
			return nil, fmt.Errorf("%w: %q: whitespace control ({{- -}}) is not supported", ErrTemplate, src)
		}
		toks, err := lex(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrTemplate, src, err)
		}
		p := &parser{toks: toks}
		n, err := p.parseExpr(0)
		if err == nil && p.pos < len(p.toks) {
			err = fmt.Errorf("unexpected %q", p.toks[p.pos].text)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrTemplate, src, err)
		}
		t.parts = append(t.parts, tplPart{expr: n})
		rest = rest[i+2+end+2:]
	}
	return t, nil
}

// firstTag returns the index of the first "{{", "{%" or "{#" in s, or -1.
func firstTag(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '{' && (s[i+1] == '{' || s[i+1] == '%' || s[i+1] == '#') {
			return i
		}
	}
	return -1
}

// String returns the source text.
func (t *Template) String() string { return t.src }

// token kinds.
const (
	tkNum = iota
	tkStr
	tkIdent
	tkOp
)

type token struct {
	kind int
	text string
	num  value
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c >= '0' && c <= '9':
			j := i
			isFloat := false
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '_') {
				if s[j] == '.' {
					if isFloat || j+1 >= len(s) || s[j+1] < '0' || s[j+1] > '9' {
						break
					}
					isFloat = true
				}
				j++
			}
			lit := strings.ReplaceAll(s[i:j], "_", "")
			if isFloat {
				f, err := strconv.ParseFloat(lit, 64)
				if err != nil {
					return nil, fmt.Errorf("bad number %q", s[i:j])
				}
				toks = append(toks, token{kind: tkNum, text: s[i:j], num: f})
			} else {
				n, err := strconv.ParseInt(lit, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("bad number %q", s[i:j])
				}
				toks = append(toks, token{kind: tkNum, text: s[i:j], num: n})
			}
			i = j
		case c == '\'' || c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					switch s[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					default:
						b.WriteByte(s[j])
					}
					continue
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, errors.New("unterminated string")
			}
			toks = append(toks, token{kind: tkStr, text: b.String()})
			i = j + 1
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			toks = append(toks, token{kind: tkIdent, text: s[i:j]})
			i = j
		default:
			op := ""
			for _, two := range []string{"//", "==", "!=", "<=", ">=", "**"} {
				if strings.HasPrefix(s[i:], two) {
					op = two
					break
				}
			}
			if op == "" && strings.ContainsRune("+-*/%()[].|,<>~", rune(c)) {
				op = string(c)
			}
			if op == "" || op == "**" || op == "~" {
				return nil, fmt.Errorf("unsupported character or operator %q", s[i:i+max(1, len(op))])
			}
			toks = append(toks, token{kind: tkOp, text: op})
			i += len(op)
		}
	}
	if len(toks) == 0 {
		return nil, errors.New("empty expression")
	}
	return toks, nil
}

// node is an expression tree node.
type node interface{}

type (
	litNode  struct{ v value }
	nameNode struct{ name string }
	attrNode struct {
		x    node
		name string
	}
	indexNode struct{ x, idx node }
	unaryNode struct {
		op string
		x  node
	}
	binNode struct {
		op   string
		l, r node
	}
	condNode struct{ cond, yes, no node }
	filtNode struct {
		x    node
		name string
		args []node
	}
)

type parser struct {
	toks  []token
	pos   int
	depth int
}

func (p *parser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *parser) isOp(text string) bool {
	t, ok := p.peek()
	return ok && t.kind == tkOp && t.text == text
}

func (p *parser) isKeyword(text string) bool {
	t, ok := p.peek()
	return ok && t.kind == tkIdent && t.text == text
}

func (p *parser) expect(text string) error {
	if !p.isOp(text) {
		if t, ok := p.peek(); ok {
			return fmt.Errorf("expected %q, found %q", text, t.text)
		}
		return fmt.Errorf("expected %q at end", text)
	}
	p.pos++
	return nil
}

// parseExpr parses a conditional expression: or_expr [if or_expr else expr].
func (p *parser) parseExpr(depth int) (node, error) {
	if depth > maxTemplateDepth {
		return nil, errors.New("expression nested too deeply")
	}
	yes, err := p.parseOr(depth)
	if err != nil {
		return nil, err
	}
	if !p.isKeyword("if") {
		return yes, nil
	}
	p.pos++
	cond, err := p.parseOr(depth)
	if err != nil {
		return nil, err
	}
	var no node = litNode{v: undefined{name: "else branch"}}
	if p.isKeyword("else") {
		p.pos++
		if no, err = p.parseExpr(depth + 1); err != nil {
			return nil, err
		}
	}
	return condNode{cond: cond, yes: yes, no: no}, nil
}

func (p *parser) parseOr(depth int) (node, error) {
	l, err := p.parseAnd(depth)
	for err == nil && p.isKeyword("or") {
		p.pos++
		var r node
		if r, err = p.parseAnd(depth); err == nil {
			l = binNode{op: "or", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseAnd(depth int) (node, error) {
	l, err := p.parseNot(depth)
	for err == nil && p.isKeyword("and") {
		p.pos++
		var r node
		if r, err = p.parseNot(depth); err == nil {
			l = binNode{op: "and", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseNot(depth int) (node, error) {
	if p.isKeyword("not") {
		p.pos++
		x, err := p.parseNot(depth + 1)
		if err != nil {
			return nil, err
		}
		return unaryNode{op: "not", x: x}, nil
	}
	return p.parseCompare(depth)
}

func (p *parser) parseCompare(depth int) (node, error) {
	l, err := p.parseAdd(depth)
	if err != nil {
		return nil, err
	}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tkOp {
			return l, nil
		}
		switch t.text {
		case "==", "!=", "<", ">", "<=", ">=":
		default:
			return l, nil
		}
		p.pos++
		r, err := p.parseAdd(depth)
		if err != nil {
			return nil, err
		}
		l = binNode{op: t.text, l: l, r: r}
	}
}

func (p *parser) parseAdd(depth int) (node, error) {
	l, err := p.parseMul(depth)
	for err == nil && (p.isOp("+") || p.isOp("-")) {
		op := p.toks[p.pos].text
		p.pos++
		var r node
		if r, err = p.parseMul(depth); err == nil {
			l = binNode{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseMul(depth int) (node, error) {
	l, err := p.parseUnary(depth)
	for err == nil && (p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%")) {
		op := p.toks[p.pos].text
		p.pos++
		var r node
		if r, err = p.parseUnary(depth); err == nil {
			l = binNode{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseUnary(depth int) (node, error) {
	if p.isOp("-") || p.isOp("+") {
		op := p.toks[p.pos].text
		p.pos++
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return unaryNode{op: op, x: x}, nil
	}
	return p.parsePostfix(depth)
}

// parsePostfix parses a primary followed by .attr, [index] and |filter, which in Jinja all bind
// tighter than arithmetic: "value_json.x / 10 | round" rounds the 10, so devices write parentheses.
func (p *parser) parsePostfix(depth int) (node, error) {
	x, err := p.parsePrimary(depth)
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.pos++
			t, ok := p.peek()
			if !ok || t.kind != tkIdent {
				return nil, errors.New("expected an attribute name after '.'")
			}
			p.pos++
			x = attrNode{x: x, name: t.text}
		case p.isOp("["):
			p.pos++
			idx, err := p.parseExpr(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			x = indexNode{x: x, idx: idx}
		case p.isOp("|"):
			p.pos++
			t, ok := p.peek()
			if !ok || t.kind != tkIdent {
				return nil, errors.New("expected a filter name after '|'")
			}
			p.pos++
			if _, known := lookupFilter(t.text); !known {
				return nil, fmt.Errorf("unsupported filter %q", t.text)
			}
			f := filtNode{x: x, name: t.text}
			if p.isOp("(") {
				p.pos++
				for !p.isOp(")") {
					a, err := p.parseExpr(depth + 1)
					if err != nil {
						return nil, err
					}
					f.args = append(f.args, a)
					if p.isOp(",") {
						p.pos++
					} else if !p.isOp(")") {
						return nil, errors.New("expected ',' or ')' in filter arguments")
					}
				}
				p.pos++
			}
			x = f
		case p.isOp("("):
			return nil, errors.New("function calls are not supported")
		default:
			return x, nil
		}
	}
}

func (p *parser) parsePrimary(depth int) (node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, errors.New("unexpected end of expression")
	}
	p.pos++
	switch t.kind {
	case tkNum:
		return litNode{v: t.num}, nil
	case tkStr:
		return litNode{v: t.text}, nil
	case tkIdent:
		switch t.text {
		case "true", "True":
			return litNode{v: true}, nil
		case "false", "False":
			return litNode{v: false}, nil
		case "none", "None":
			return litNode{v: nil}, nil
		case "value", "value_json":
			return nameNode{name: t.text}, nil
		case "if", "else", "and", "or", "not", "is", "in":
			return nil, fmt.Errorf("unexpected keyword %q", t.text)
		}
		return nil, fmt.Errorf("unknown name %q (only value and value_json are defined)", t.text)
	case tkOp:
		if t.text == "(" {
			x, err := p.parseExpr(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			return x, nil
		}
	}
	return nil, fmt.Errorf("unexpected %q", t.text)
}
