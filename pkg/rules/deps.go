package rules

// The rule language is built on expr-lang (typed, compiled, bounded).
import _ "github.com/expr-lang/expr"
