// Command grafana-plugin is the backend of Grafana's Leakline datasource
// (plugin id leakline-findings-datasource). Grafana starts it as the
// plugin's executable and talks to it over gRPC; it is not run by hand.
// See docs/GRAFANA.md for building, installing and provisioning.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/leakline/leakline/pkg/grafana"
)

func main() {
	if err := datasource.Manage(grafana.PluginID, grafana.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("leakline datasource stopped", "error", err)
		os.Exit(1)
	}
}
