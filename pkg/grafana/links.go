package grafana

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The Investigation dashboard's address: /d/<uid>/<slug>.
const (
	InvestigationUID  = "leakline-investigation"
	InvestigationSlug = "investigation"
)

// InvestigationURL is the deep link to the Investigation dashboard for one
// actor over [from, to]:
//
//	<base>/d/leakline-investigation/investigation?var-actor=<actor>&from=<ms>&to=<ms>
//
// base is Grafana's root URL (e.g. https://grafana.example.com or
// https://example.com/grafana); a trailing slash is ignored. The actor is
// query-escaped; from and to are unix milliseconds. A zero from or to is
// left out (Grafana then uses the dashboard's default range). The pager
// builds its links with this function.
func InvestigationURL(base, actor string, from, to time.Time) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(base, "/"))
	b.WriteString("/d/" + InvestigationUID + "/" + InvestigationSlug)
	b.WriteString("?var-actor=")
	b.WriteString(url.QueryEscape(actor))
	if !from.IsZero() {
		b.WriteString("&from=")
		b.WriteString(strconv.FormatInt(from.UnixMilli(), 10))
	}
	if !to.IsZero() {
		b.WriteString("&to=")
		b.WriteString(strconv.FormatInt(to.UnixMilli(), 10))
	}
	return b.String()
}
