// Command pager runs Leakline's paging stage: findings from dlp.findings are
// routed by a policy to Alertmanager, PagerDuty and signed webhooks.
// Configuration: flags or LEAKLINE_* environment variables (pager -h);
// see docs/ONCALL.md.
package main

import (
	"os"

	"github.com/leakline/leakline/pkg/pager"
)

func main() {
	os.Exit(pager.Main(os.Args[1:], os.Getenv, os.Stderr))
}
