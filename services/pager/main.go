// Command pager runs Leakline's paging stage: findings from dlp.findings are
// routed by a policy to Alertmanager, PagerDuty and signed webhooks; open
// incidents are rebuilt from dlp.findings on start. It serves /metrics,
// /healthz and /readyz on LEAKLINE_METRICS_ADDR (default :9464).
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
