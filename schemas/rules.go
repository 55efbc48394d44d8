package schemas

import _ "embed"

// RulePackSchemaFile is the file name (and the last segment of the $id,
// https://schemas.leakline.dev/rulepack.v1.schema.json) of RulePackSchema.
const RulePackSchemaFile = "rulepack.v1.schema.json"

// RulePackSchema is the JSON Schema (draft 2020-12) of the YAML files of a
// rule pack: $defs/packFile (pack.yaml), $defs/rulesFile (the other
// top-level *.yaml files) and $defs/testFile (tests/*.yaml); the top level
// accepts any of the three, for editors. pkg/rules validates every file
// against its definition, besides its own checks (docs/RULES.md).
//
//go:embed rulepack.v1.schema.json
var RulePackSchema []byte
