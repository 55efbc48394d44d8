// Command normalizer runs Leakline's normalizer stage. Configuration: flags or LEAKLINE_*
// environment variables; see the README's configuration reference.
package main

import (
	"os"

	"github.com/leakline/leakline/pkg/pipeline"
	"github.com/leakline/leakline/pkg/service"
)

func main() {
	os.Exit(service.Main(pipeline.StageNormalizer, os.Args[1:]))
}
