package detect

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/leakline/leakline/pkg/rules"
)

// kindGate is the event kind a bool expression requires, found statically:
// most conditions start with `kind == "crm_access" && …`. When the current
// event's kind differs the expression is false without running the VM.
// Only the leftmost operand of a chain of && counts: expr evaluates it first
// and short-circuits, so skipping the VM yields exactly what evaluating
// would (false, and no error). The empty gate admits every event.
type kindGate string

func gateOf(x *rules.Expr) kindGate {
	if x == nil {
		return ""
	}
	tree, err := parser.Parse(x.Source)
	if err != nil {
		return ""
	}
	n := tree.Node
	for {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return ""
		}
		switch b.Operator {
		case "&&", "and":
			n = b.Left
			continue
		case "==":
			if k, ok := kindLiteral(b.Left, b.Right); ok {
				return kindGate(k)
			}
			if k, ok := kindLiteral(b.Right, b.Left); ok {
				return kindGate(k)
			}
		}
		return ""
	}
}

// kindLiteral reports whether id is the identifier kind and lit a string.
func kindLiteral(id, lit ast.Node) (string, bool) {
	i, ok := id.(*ast.IdentifierNode)
	if !ok || i.Value != "kind" {
		return "", false
	}
	s, ok := lit.(*ast.StringNode)
	if !ok || s.Value == "" {
		return "", false
	}
	return s.Value, true
}

// admits reports whether an event of kind k may satisfy the expression.
func (g kindGate) admits(k string) bool { return g == "" || string(g) == k }

// isActorUID reports whether x is exactly `actor.uid`, the default group_by:
// the engine then takes the key from the event instead of running the VM
// (a field read cannot fail, so the result is the same).
func isActorUID(x *rules.Expr) bool {
	if x == nil {
		return false
	}
	tree, err := parser.Parse(x.Source)
	if err != nil {
		return false
	}
	m, ok := tree.Node.(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	prop, ok2 := m.Property.(*ast.StringNode)
	return ok && ok2 && id.Value == "actor" && prop.Value == "uid"
}
