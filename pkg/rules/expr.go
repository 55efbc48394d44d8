package rules

import (
	"errors"
	"fmt"
	"reflect"
	"regexp/syntax"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	exprfile "github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Bounds of expressions (see docs/RULES.md "Bounds").
const (
	MaxExprBytes     = 2048    // source length
	MaxExprNodes     = 500     // AST nodes, as parsed
	MaxRegexBytes    = 512     // a regular expression literal used with matches
	MaxRegexInsts    = 5000    // instructions of its compiled regexp/syntax program
	MaxExprCost      = 100_000 // estimated element steps of one evaluation
	MaxRangeLen      = 1000    // a constant range a..b
	VMMemoryBudget   = 100_000 // vm.VM.MemoryBudget of NewVM
	defaultCollLen   = 10_000  // assumed length of a collection of unknown size
	maxPredicateNest = 1       // predicates (map, filter, any, ...) may not nest
)

// ResultKind is the type an expression produces.
type ResultKind uint8

// Result kinds.
const (
	ResultBool    ResultKind = iota + 1 // match, until, then, steps' match
	ResultNumber                        // sum and baseline value (int or float)
	ResultString                        // group_by
	ResultStrings                       // distinct value: a string or a list of strings
)

// String names the kind for messages.
func (k ResultKind) String() string {
	switch k {
	case ResultBool:
		return "bool"
	case ResultNumber:
		return "number"
	case ResultString:
		return "string"
	case ResultStrings:
		return "string or list of strings"
	}
	return "unknown"
}

// Expr is one compiled rule expression.
type Expr struct {
	// Source is the expression as written; Pos where it starts in the pack.
	Source string
	Pos    Pos
	// Canonical is the expression printed back from its syntax tree, with
	// lists.NAME replaced by the list: whitespace and layout do not change
	// it. Rule versions are computed from it.
	Canonical string

	prog *vm.Program
	kind ResultKind
	// list is true when a ResultStrings expression yields a list.
	list bool
}

// Result is the kind of value the expression yields.
func (x *Expr) Result() ResultKind { return x.kind }

// String returns the source.
func (x *Expr) String() string { return x.Source }

// ErrNilExpr is returned when a nil *Expr is evaluated.
var ErrNilExpr = errors.New("rules: nil expression")

// NewVM returns a VM for evaluating rule expressions, with a memory budget
// that bounds what one evaluation may allocate. Reuse one VM per goroutine.
func NewVM() *vm.VM { return &vm.VM{MemoryBudget: VMMemoryBudget} }

func (x *Expr) run(m *vm.VM, env *Env) (any, error) {
	if x == nil || x.prog == nil {
		return nil, ErrNilExpr
	}
	if m == nil {
		m = NewVM()
	}
	return m.Run(x.prog, env.value())
}

// Bool evaluates a bool expression (match, until, then, a step's match).
// A runtime error (an index out of range, say) is returned; the engine
// should treat it as false and count it.
func (x *Expr) Bool(m *vm.VM, env *Env) (bool, error) {
	out, err := x.run(m, env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("rules: expression %q yielded %T, not bool", x.Source, out)
	}
	return b, nil
}

// Number evaluates a number expression (the value of sum and baseline).
func (x *Expr) Number(m *vm.VM, env *Env) (float64, error) {
	out, err := x.run(m, env)
	if err != nil {
		return 0, err
	}
	switch v := out.(type) {
	case int:
		return float64(v), nil
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case int32:
		return float64(v), nil
	case int16:
		return float64(v), nil
	case int8:
		return float64(v), nil
	case uint:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case uint32:
		return float64(v), nil
	case uint16:
		return float64(v), nil
	case uint8:
		return float64(v), nil
	case float32:
		return float64(v), nil
	}
	return 0, fmt.Errorf("rules: expression %q yielded %T, not a number", x.Source, out)
}

// Text evaluates a string expression (group_by).
func (x *Expr) Text(m *vm.VM, env *Env) (string, error) {
	out, err := x.run(m, env)
	if err != nil {
		return "", err
	}
	s, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("rules: expression %q yielded %T, not string", x.Source, out)
	}
	return s, nil
}

// Strings evaluates a string or list-of-strings expression (the value of
// distinct) and appends the strings to dst, as strconv's Append functions
// do: pass buf[:0] to reuse a buffer.
func (x *Expr) Strings(m *vm.VM, env *Env, dst []string) ([]string, error) {
	out, err := x.run(m, env)
	if err != nil {
		return dst, err
	}
	switch v := out.(type) {
	case string:
		return append(dst, v), nil
	case []string:
		return append(dst, v...), nil
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return dst, fmt.Errorf("rules: expression %q yielded a list holding %T, not string", x.Source, e)
			}
			dst = append(dst, s)
		}
		return dst, nil
	}
	return dst, fmt.Errorf("rules: expression %q yielded %T, not string or list of strings", x.Source, out)
}

// exprError is a problem at a rune offset of an expression's source.
type exprError struct {
	offset int
	msg    string
}

// disabledBuiltins are expr-lang builtins rules may not use: now and the
// date functions make evaluation depend on the wall clock (a replay or a
// backtest must give the same findings), the others can allocate a lot.
var disabledBuiltins = []string{"now", "date", "timezone", "duration", "repeat", "toJSON", "fromJSON", "toBase64", "fromBase64"}

// predicateBuiltins take a predicate and loop over their first argument.
var predicateBuiltins = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true, "find": true,
	"findIndex": true, "findLast": true, "findLastIndex": true, "count": true, "sum": true,
	"groupBy": true, "sortBy": true, "reduce": true,
}

// collectionLen is the largest length of the collections of the Env (per
// the event schemas); other collections are assumed defaultCollLen long.
var collectionLen = map[string]int{
	"crm.record_ids": 10_000, "crm.fields": 1000, "outbound.domains": 1000, "outbound.file_names": 101,
	"pii.counts": 64,
}

var parseConfig = func() *conf.Config {
	c := conf.CreateNew()
	for _, name := range disabledBuiltins {
		delete(c.Builtins, name)
	}
	c.MaxNodes = 0 // counted by checkTree with a better message
	return c
}()

// compileExpr parses, bounds, type-checks and compiles one expression.
// want is the required result (ResultStrings accepts a string too). The
// errors carry rune offsets into src.
func compileExpr(src string, want ResultKind, lists map[string][]string) (x *Expr, errs []exprError) {
	defer func() {
		if r := recover(); r != nil { // expr-lang must never take the loader down
			x, errs = nil, []exprError{{0, fmt.Sprintf("expression could not be compiled (internal error: %v)", r)}}
		}
	}()
	if len(src) > MaxExprBytes {
		return nil, []exprError{{0, fmt.Sprintf("expression is %d bytes long, the limit is %d", len(src), MaxExprBytes)}}
	}
	if !utf8.ValidString(src) {
		return nil, []exprError{{0, "expression is not valid UTF-8"}}
	}
	tree, err := parser.ParseWithConfig(src, parseConfig)
	if err != nil {
		return nil, []exprError{fromExprErr(err)}
	}
	c := &treeChecker{lists: lists}
	c.check(&tree.Node)
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	patch := listPatcher{lists: lists}
	ast.Walk(&tree.Node, patch)
	canonical := tree.Node.String()

	opts := []expr.Option{expr.Env(Env{}), expr.Patch(patch), expr.MaxNodes(0)}
	for _, name := range disabledBuiltins {
		opts = append(opts, expr.DisableBuiltin(name))
	}
	switch want {
	case ResultBool:
		opts = append(opts, expr.AsBool())
	case ResultString:
		opts = append(opts, expr.AsKind(reflect.String))
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, []exprError{fromExprErr(err)}
	}
	x = &Expr{Source: src, Canonical: canonical, prog: prog, kind: want}
	t := prog.Node().Type()
	got := "unknown type (interface{})"
	if t != nil {
		got = t.String()
	}
	ok := false
	if t != nil {
		switch want {
		case ResultBool:
			ok = t.Kind() == reflect.Bool
		case ResultString:
			ok = t.Kind() == reflect.String
		case ResultNumber:
			switch t.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
				reflect.Float32, reflect.Float64:
				ok = true
			}
		case ResultStrings:
			elem := reflect.Invalid
			if t.Kind() == reflect.Slice {
				elem = t.Elem().Kind()
				// map(list, string expr) is typed []interface{} holding strings.
				if nt := prog.Node().Nature(); elem == reflect.Interface && nt != nil && nt.Ref != nil {
					elem = nt.Ref.Kind
				}
			}
			ok = t.Kind() == reflect.String || elem == reflect.String
			x.list = t.Kind() == reflect.Slice
		}
	}
	if !ok {
		return nil, []exprError{{0, fmt.Sprintf("expression must yield %s, it yields %s", want, got)}}
	}
	return x, nil
}

// fromExprErr turns an expr-lang error into an exprError at its offset.
func fromExprErr(err error) exprError {
	var fe *exprfile.Error
	if errors.As(err, &fe) {
		msg := fe.Message
		if msg == "" {
			msg = fe.Error()
		}
		return exprError{fe.From, msg}
	}
	return exprError{0, err.Error()}
}

// treeChecker enforces the bounds on a parsed expression.
type treeChecker struct {
	lists map[string][]string
	nodes int
	cost  int
	errs  []exprError
}

func (c *treeChecker) errorf(n ast.Node, format string, a ...any) {
	c.errs = append(c.errs, exprError{n.Location().From, fmt.Sprintf(format, a...)})
}

func (c *treeChecker) check(root *ast.Node) {
	ast.Walk(root, c)
	if c.nodes > MaxExprNodes {
		c.errs = append(c.errs, exprError{0, fmt.Sprintf("expression has %d syntax nodes, the limit is %d", c.nodes, MaxExprNodes)})
	}
	if c.cost > MaxExprCost {
		c.errs = append(c.errs, exprError{0, fmt.Sprintf("expression may take about %d steps per event (loops over collections), the limit is %d", c.cost, MaxExprCost)})
	}
}

// Visit is called by ast.Walk for every node, children first.
func (c *treeChecker) Visit(np *ast.Node) {
	c.nodes++
	switch n := (*np).(type) {
	case *ast.IdentifierNode:
		// lists alone (not lists.NAME) is reported by the member case or
		// by the type checker ("unknown name lists").
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "lists" {
			name, ok := n.Property.(*ast.StringNode)
			switch {
			case !ok:
				c.errorf(n, "lists must be used as lists.NAME with a literal name")
			case c.lists[name.Value] == nil:
				c.errorf(n, "unknown list %q (lists are defined in pack.yaml under lists:)", name.Value)
			}
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "matches":
			s, ok := n.Right.(*ast.StringNode)
			if !ok {
				c.errorf(n, "the right side of matches must be a string literal (a regular expression known at load time)")
				return
			}
			if msg := checkRegex(s.Value); msg != "" {
				c.errorf(n.Right, "%s", msg)
			}
		case "..":
			lo, okLo := intConst(n.Left)
			hi, okHi := intConst(n.Right)
			if !okLo || !okHi {
				c.errorf(n, "a range a..b must have integer literal bounds")
			} else if hi-lo+1 > MaxRangeLen {
				c.errorf(n, "the range %d..%d has %d elements, the limit is %d", lo, hi, hi-lo+1, MaxRangeLen)
			}
		case "in", "not in":
			c.cost += c.collLen(n.Right)
		}
	case *ast.BuiltinNode:
		if predicateBuiltins[n.Name] && len(n.Arguments) > 0 {
			body := 1
			for _, a := range n.Arguments[1:] {
				if p, ok := a.(*ast.PredicateNode); ok {
					body += countNodes(p)
					if nestedPredicates(p) >= maxPredicateNest {
						c.errorf(p, "%s: a predicate may not contain another predicate (map, filter, any, ...)", n.Name)
					}
				}
			}
			c.cost += c.collLen(n.Arguments[0]) * body
		}
	}
}

// collLen estimates the length of a collection expression.
func (c *treeChecker) collLen(n ast.Node) int {
	switch n := n.(type) {
	case *ast.ArrayNode:
		return len(n.Nodes)
	case *ast.MapNode:
		return len(n.Pairs)
	case *ast.StringNode:
		return 1 // "x" in "string"
	case *ast.BinaryNode:
		if n.Operator == ".." {
			lo, okLo := intConst(n.Left)
			hi, okHi := intConst(n.Right)
			if okLo && okHi {
				return max(hi-lo+1, 0)
			}
		}
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok {
			if p, ok := n.Property.(*ast.StringNode); ok {
				if id.Value == "lists" {
					return 1 // a list becomes a set: one lookup
				}
				if l, ok := collectionLen[id.Value+"."+p.Value]; ok {
					return l
				}
			}
		}
	}
	return defaultCollLen
}

func intConst(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.UnaryNode:
		if v, ok := intConst(n.Node); ok && n.Operator == "-" {
			return -v, true
		}
	}
	return 0, false
}

type nodeCounter int

func (c *nodeCounter) Visit(*ast.Node) { *c++ }

func countNodes(n ast.Node) int {
	var c nodeCounter
	ast.Walk(&n, &c)
	return int(c)
}

type predicateCounter int

func (c *predicateCounter) Visit(n *ast.Node) {
	if _, ok := (*n).(*ast.PredicateNode); ok {
		*c++
	}
}

// nestedPredicates counts the predicates inside p (p excluded).
func nestedPredicates(p *ast.PredicateNode) int {
	var c predicateCounter
	ast.Walk(&p.Node, &c)
	return int(c)
}

// checkRegex bounds a regular expression literal: its length, and the size
// of its compiled program, estimated before compiling so that a pattern like
// (a{1000}){1000} is never compiled.
func checkRegex(re string) string {
	if len(re) > MaxRegexBytes {
		return fmt.Sprintf("regular expression is %d bytes long, the limit is %d", len(re), MaxRegexBytes)
	}
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "invalid regular expression: " + err.Error()
	}
	// The estimate is an upper bound, up to a few times the real size: it
	// only keeps pathological patterns from being compiled at all.
	if est := regexSize(parsed); est > 20*MaxRegexInsts {
		return fmt.Sprintf("regular expression compiles to about %d instructions or more, the limit is %d", est/4, MaxRegexInsts)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return "invalid regular expression: " + err.Error()
	}
	if len(prog.Inst) > MaxRegexInsts {
		return fmt.Sprintf("regular expression compiles to %d instructions, the limit is %d", len(prog.Inst), MaxRegexInsts)
	}
	return ""
}

// regexSize over-estimates the instructions of a parsed expression; it
// saturates instead of overflowing.
func regexSize(re *syntax.Regexp) int {
	const inf = 1 << 40
	sum := func(subs []*syntax.Regexp) int {
		n := 0
		for _, s := range subs {
			n = min(n+regexSize(s), inf)
		}
		return n
	}
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) + 1
	case syntax.OpConcat:
		return sum(re.Sub) + 1
	case syntax.OpAlternate:
		return sum(re.Sub) + len(re.Sub) + 1
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return sum(re.Sub) + 2
	case syntax.OpRepeat:
		n := re.Max
		if n < 0 {
			n = re.Min + 1
		}
		return min((sum(re.Sub)+2)*max(n, 1), inf)
	}
	return 2
}

// listPatcher replaces lists.NAME by the list literal, so that x in
// lists.NAME is optimized to a set lookup.
type listPatcher struct {
	lists map[string][]string
}

// Visit implements ast.Visitor.
func (p listPatcher) Visit(np *ast.Node) {
	n, ok := (*np).(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := n.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "lists" {
		return
	}
	name, ok := n.Property.(*ast.StringNode)
	if !ok {
		return
	}
	list, ok := p.lists[name.Value]
	if !ok {
		return
	}
	arr := &ast.ArrayNode{Nodes: make([]ast.Node, len(list))}
	for i, s := range list {
		sn := &ast.StringNode{Value: s}
		sn.SetLocation(n.Location())
		arr.Nodes[i] = sn
	}
	ast.Patch(np, arr)
}
