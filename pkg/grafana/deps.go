package grafana

import _ "github.com/grafana/grafana-plugin-sdk-go/backend"
