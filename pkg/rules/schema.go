package rules

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/leakline/leakline/schemas"
)

// The definitions of schemas/rulepack.v1.schema.json each file is checked
// against.
const (
	schemaPackFile  = "packFile"
	schemaRulesFile = "rulesFile"
	schemaTestFile  = "testFile"
)

const schemaURL = "https://schemas.leakline.dev/" + schemas.RulePackSchemaFile

type compiledSchemas map[string]*jsonschema.Schema

var loadSchemas = sync.OnceValues(func() (compiledSchemas, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.RulePackSchema))
	if err != nil {
		return nil, fmt.Errorf("rules: parse %s: %w", schemas.RulePackSchemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("rules: add %s: %w", schemas.RulePackSchemaFile, err)
	}
	out := compiledSchemas{}
	for _, def := range []string{"", schemaPackFile, schemaRulesFile, schemaTestFile} {
		loc := schemaURL
		if def != "" {
			loc += "#/$defs/" + def
		}
		s, err := c.Compile(loc)
		if err != nil {
			return nil, fmt.Errorf("rules: compile %s: %w", loc, err)
		}
		out[def] = s
	}
	return out, nil
})

// schemaCheck validates a file's root node against a definition of the
// rule-pack schema. It runs after the file's own checks found nothing, so a
// schema error means the two disagree; it is reported at the node the
// schema names.
func schemaCheck(f *file, root *yaml.Node, def string) {
	ss, err := loadSchemas()
	if err != nil {
		f.errs.add(Pos{File: f.name}, "%v", err)
		return
	}
	err = ss[def].Validate(toJSON(root))
	if err == nil {
		return
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		f.errs.add(f.pos(root), "schema %s: %v", schemas.RulePackSchemaFile, err)
		return
	}
	for _, leaf := range leaves(ve, nil) {
		n := nodeAt(root, leaf.InstanceLocation)
		msg := leaf.ErrorKind.KeywordPath()
		text := ""
		if out := leaf.BasicOutput(); out != nil && out.Error != nil {
			text = out.Error.String()
		}
		f.errorf(n, "does not match %s (%s): %s", schemas.RulePackSchemaFile, strings.Join(msg, "/"), text)
	}
}

// leaves collects the errors without causes.
func leaves(ve *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return append(out, ve)
	}
	for _, c := range ve.Causes {
		out = leaves(c, out)
	}
	return out
}

// nodeAt follows a JSON-pointer path (as segments) into a YAML tree; it
// stops at the deepest node it can reach.
func nodeAt(n *yaml.Node, path []string) *yaml.Node {
	for _, seg := range path {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg {
					next = n.Content[i+1]
					break
				}
			}
			if next == nil {
				return n
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n.Content) {
				return n
			}
			n = n.Content[i]
		default:
			return n
		}
	}
	return n
}

// toJSON converts a YAML tree into the values jsonschema validates:
// map[string]any, []any, string, bool, nil and numbers. Timestamps and
// other scalars become their text.
func toJSON(n *yaml.Node) any {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return toJSON(n.Content[0])
		}
		return nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = toJSON(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		a := make([]any, len(n.Content))
		for i, c := range n.Content {
			a[i] = toJSON(c)
		}
		return a
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b
			}
		case "!!int":
			var i int64
			if n.Decode(&i) == nil {
				return i
			}
			fallthrough
		case "!!float":
			var f float64
			if n.Decode(&f) == nil {
				return f
			}
		}
		return n.Value
	}
	return nil
}
