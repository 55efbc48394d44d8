// Package schemas holds Leakline's machine-readable contracts: the JSON
// Schemas (draft 2020-12) of the raw events that sources send, and the
// ClickHouse DDL.
package schemas

import "embed"

// EventSchemas holds the event JSON Schemas, one file per kind and version,
// named KIND.vVERSION.schema.json (crm_access.v1.schema.json,
// outbound.v1.schema.json). Each file's $id is
// https://schemas.leakline.dev/FILENAME.
//
//go:embed crm_access.v1.schema.json outbound.v1.schema.json
var EventSchemas embed.FS
