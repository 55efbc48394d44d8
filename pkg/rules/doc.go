// Package rules owns Leakline's rule-pack format and its compiler: the YAML
// files detection engineers write (docs/RULES.md), their validation, the
// typed expression language rules use, and the fixtures that test them.
//
// A pack is loaded with LoadDir, LoadFS, Parse (file name → content, for a
// pack that arrives as a message) or LoadDefault (the embedded default
// pack). Loading checks everything — YAML structure (unknown fields,
// types, required fields, duplicates), rule ids across files, durations and
// window bounds, and every expression, type-checked at load time against
// Env with bounded size and cost — and reports every problem at once, each
// as "file:line:col: message" (see Error). A pack that loads is immutable
// and safe to share between goroutines.
//
// The engine in pkg/detect evaluates a compiled Rule per event: it keeps
// one Env (NewEnv) and one VM (NewVM) per goroutine, calls Env.SetEvent,
// sets Env.PII and Env.Outbound.External, and evaluates Rule.Match,
// Rule.GroupBy and the Window's expressions with Expr.Bool, Expr.Text,
// Expr.Number and Expr.Strings. Evaluation over an Env made by NewEnv does
// not allocate for field comparisons.
//
// Fixtures (LoadTests) are generated raw events plus expected findings; the
// engine's runner feeds the events and Compare reports the differences.
package rules
