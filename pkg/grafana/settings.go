package grafana

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/hashicorp/go-multierror"

	"github.com/leakline/leakline/pkg/chstore"
)

// Defaults of Settings.
const (
	DefaultDialTimeout    = 10 * time.Second
	DefaultQueryTimeout   = 60 * time.Second
	DefaultMaxOpenConns   = 4
	DefaultStreamInterval = 2 * time.Second
	// MinStreamInterval bounds how often a live panel polls ClickHouse.
	MinStreamInterval = 100 * time.Millisecond
)

// Settings are a datasource instance's settings: jsonData plus the
// password and TLS material from secureJsonData.
//
// jsonData (all optional except address):
//
//	{
//	  "address": "clickhouse:9000",   // Native protocol host:port (9440: secure port)
//	  "database": "leakline",
//	  "username": "grafana",          // default "default"
//	  "dialTimeout": "10s",           // Go duration, or seconds as a number
//	  "queryTimeout": "60s",
//	  "maxOpenConns": 4,
//	  "streamInterval": "2s",         // how often the live stream polls
//	  "secure": true,                 // TLS (then address is the secure Native port)
//	  "tlsAuthWithCACert": true,      // trust secureJsonData.tlsCACert (else the system roots)
//	  "tlsAuth": true,                // mutual TLS: present tlsClientCert/tlsClientKey
//	  "serverName": "clickhouse.internal" // name checked in the server's certificate
//	}
//
// secureJsonData: {"password": "...", "tlsCACert": "<PEM>",
// "tlsClientCert": "<PEM>", "tlsClientKey": "<PEM>"}. The TLS key names are
// those of Grafana's own datasources. A password, certificate or key in
// jsonData is refused (jsonData is stored and shown in clear text), and so
// is "tlsSkipVerify": true: certificates are always verified.
type Settings struct {
	Address        string   `json:"address"`
	Database       string   `json:"database"`
	Username       string   `json:"username"`
	DialTimeout    Duration `json:"dialTimeout"`
	QueryTimeout   Duration `json:"queryTimeout"`
	MaxOpenConns   int      `json:"maxOpenConns"`
	StreamInterval Duration `json:"streamInterval"`

	// Secure connects over TLS.
	Secure bool `json:"secure"`
	// TLSAuthWithCACert trusts the CA certificates of
	// secureJsonData.tlsCACert instead of the system's roots.
	TLSAuthWithCACert bool `json:"tlsAuthWithCACert"`
	// TLSAuth presents the client certificate of secureJsonData
	// (tlsClientCert, tlsClientKey) for mutual TLS.
	TLSAuth bool `json:"tlsAuth"`
	// ServerName is the name checked in the server's certificate; empty:
	// the host of Address.
	ServerName string `json:"serverName"`

	// Password comes from secureJsonData, never from jsonData.
	Password string `json:"-"`

	// tls is the client TLS configuration built from the above and the
	// certificates of secureJsonData; nil when Secure is off.
	tls *tls.Config
}

// TLSConfig is the client TLS configuration of the settings, nil when TLS
// is off. Callers must not modify it.
func (s Settings) TLSConfig() *tls.Config { return s.tls }

// Duration is a time.Duration that reads from JSON as a Go duration string
// ("10s") or a number of seconds (10).
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want e.g. \"10s\")", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s (want a string like \"10s\" or seconds)", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// secretKeys are parts of jsonData keys that must live in secureJsonData
// instead; secureOnlyKeys are whole keys that must (the TLS certificates
// and key, under Grafana's names).
var (
	secretKeys     = []string{"password", "secret", "token"}
	secureOnlyKeys = []string{"tlscacert", "tlsclientcert", "tlsclientkey"}
)

// settingsErrorPrefix starts every settings error.
const settingsErrorPrefix = "leakline datasource settings: "

// LoadSettings reads and validates an instance's settings. Every problem is
// reported at once; no error holds a secret's value.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var set Settings
	errs := &multierror.Error{ErrorFormat: settingsErrorFormat}
	add := func(format string, a ...any) { errs = multierror.Append(errs, fmt.Errorf(format, a...)) }
	if len(bytes.TrimSpace(s.JSONData)) > 0 {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(s.JSONData, &raw); err != nil {
			return set, fmt.Errorf(settingsErrorPrefix+"jsonData is not a JSON object: %w", err)
		}
		keys := make([]string, 0, len(raw))
		for k := range raw {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			lk := strings.ToLower(k)
			if slices.Contains(secureOnlyKeys, lk) || slices.ContainsFunc(secretKeys, func(s string) bool { return strings.Contains(lk, s) }) {
				add("jsonData has %q: secrets and certificates belong in secureJsonData (it is stored encrypted), never in jsonData", k)
			}
		}
		// Field by field, so that every bad value is reported.
		for _, f := range []struct {
			key string
			dst any
		}{
			{"address", &set.Address}, {"database", &set.Database}, {"username", &set.Username},
			{"dialTimeout", &set.DialTimeout}, {"queryTimeout", &set.QueryTimeout},
			{"maxOpenConns", &set.MaxOpenConns}, {"streamInterval", &set.StreamInterval},
			{"secure", &set.Secure}, {"tlsAuthWithCACert", &set.TLSAuthWithCACert}, {"tlsAuth", &set.TLSAuth},
			{"serverName", &set.ServerName},
		} {
			if v, ok := raw[f.key]; ok {
				if err := json.Unmarshal(v, f.dst); err != nil {
					add("jsonData.%s: %w", f.key, err)
				}
			}
		}
		if v, ok := raw["tlsSkipVerify"]; ok {
			var skip bool
			if err := json.Unmarshal(v, &skip); err != nil || skip {
				add("jsonData.tlsSkipVerify: TLS without certificate verification is not supported; " +
					"trust the server's CA instead (tlsAuthWithCACert and secureJsonData.tlsCACert)")
			}
		}
	}
	set.Password = s.DecryptedSecureJSONData["password"]
	set.Address = strings.TrimSpace(set.Address)
	if set.Address == "" {
		add("jsonData.address (ClickHouse Native host:port) is required")
	}
	if set.Database == "" {
		set.Database = chstore.DefaultDatabase
	}
	for _, d := range []struct {
		name string
		v    *Duration
		def  time.Duration
	}{
		{"dialTimeout", &set.DialTimeout, DefaultDialTimeout},
		{"queryTimeout", &set.QueryTimeout, DefaultQueryTimeout},
		{"streamInterval", &set.StreamInterval, DefaultStreamInterval},
	} {
		switch {
		case *d.v < 0:
			add("jsonData.%s is negative", d.name)
		case *d.v == 0:
			*d.v = Duration(d.def)
		}
	}
	if time.Duration(set.StreamInterval) < MinStreamInterval {
		set.StreamInterval = Duration(MinStreamInterval)
	}
	switch {
	case set.MaxOpenConns < 0:
		add("jsonData.maxOpenConns is negative")
	case set.MaxOpenConns == 0:
		set.MaxOpenConns = DefaultMaxOpenConns
	}
	set.ServerName = strings.TrimSpace(set.ServerName)
	var tlsErrs []error
	set.tls, tlsErrs = set.tlsConfig(s.DecryptedSecureJSONData)
	errs = multierror.Append(errs, tlsErrs...)
	return set, errs.ErrorOrNil()
}

// settingsErrorFormat puts every problem on one line, after one prefix.
func settingsErrorFormat(errs []error) string {
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return settingsErrorPrefix + strings.Join(msgs, "; ")
}

// tlsConfig builds the client TLS configuration (TLS 1.2 or later) from the
// TLS settings and the PEM certificates and key of secureJsonData; nil when
// TLS is off. Errors name the keys, never their values. As in Grafana's
// datasources, a CA or client certificate stored in secureJsonData is used
// only while its switch (tlsAuthWithCACert, tlsAuth) is on.
func (s Settings) tlsConfig(secure map[string]string) (*tls.Config, []error) {
	var errs []error
	if !s.Secure {
		var set []string
		for _, o := range []struct {
			key string
			set bool
		}{{"tlsAuthWithCACert", s.TLSAuthWithCACert}, {"tlsAuth", s.TLSAuth}, {"serverName", s.ServerName != ""}} {
			if o.set {
				set = append(set, "jsonData."+o.key)
			}
		}
		if len(set) > 0 {
			errs = append(errs, fmt.Errorf("%s set but TLS is off: set jsonData.secure to true (and the address to the secure Native port, usually 9440), or remove them", strings.Join(set, ", ")))
		}
		return nil, errs
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	if s.TLSAuthWithCACert {
		switch pem := strings.TrimSpace(secure["tlsCACert"]); {
		case pem == "":
			errs = append(errs, errors.New("jsonData.tlsAuthWithCACert is on but secureJsonData.tlsCACert (the CA certificate, PEM) is empty"))
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(pem)) {
				errs = append(errs, errors.New("secureJsonData.tlsCACert holds no PEM certificate (want -----BEGIN CERTIFICATE-----)"))
			}
			c.RootCAs = pool
		}
	}
	if s.TLSAuth {
		cert, key := strings.TrimSpace(secure["tlsClientCert"]), strings.TrimSpace(secure["tlsClientKey"])
		switch {
		case cert == "" || key == "":
			var missing []string
			if cert == "" {
				missing = append(missing, "secureJsonData.tlsClientCert")
			}
			if key == "" {
				missing = append(missing, "secureJsonData.tlsClientKey")
			}
			errs = append(errs, fmt.Errorf("jsonData.tlsAuth is on but %s empty (mutual TLS needs the client certificate and its key, PEM)", strings.Join(missing, ", ")))
		default:
			// crypto/tls's errors describe the problem, not the key.
			pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
			if err != nil {
				errs = append(errs, fmt.Errorf("secureJsonData.tlsClientCert/tlsClientKey: %w", err))
			}
			c.Certificates = []tls.Certificate{pair}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// connectHint says which setting likely fixes a failed connection, for
// the health check: an untrusted or misnamed server certificate, a client
// certificate missing or refused, TLS spoken to a plain port, or plaintext
// spoken to a secure one. Empty when there is nothing to add.
func (s Settings) connectHint(err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		badName   x509.HostnameError
		notTLS    tls.RecordHeaderError
		op        *net.OpError
	)
	// crypto/tls reports the server's alerts as a net.OpError "remote error".
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		switch alert := op.Err.Error(); {
		case strings.Contains(alert, "certificate required") || !s.TLSAuth && strings.Contains(alert, "certificate"):
			return " (the server demands a client certificate: turn on \"Client certificate\" (jsonData.tlsAuth) and paste it and its key (secureJsonData.tlsClientCert, tlsClientKey))"
		case s.TLSAuth && strings.Contains(alert, "certificate"):
			return " (the server refused the client certificate, secureJsonData.tlsClientCert: use one issued by a CA the server trusts, valid now, for client authentication)"
		}
	}
	switch {
	case errors.As(err, &unknownCA):
		if s.TLSAuthWithCACert {
			return " (the CA certificate in the TLS settings, secureJsonData.tlsCACert, did not sign the server's certificate: use the CA that did)"
		}
		return " (the system's CAs do not trust the server's certificate: turn on \"With CA certificate\" (jsonData.tlsAuthWithCACert) and paste the CA that signed it (secureJsonData.tlsCACert))"
	case errors.As(err, &badName):
		return " (the name checked, jsonData.serverName or else the host of the address, is not in the server's certificate: set serverName to a name it holds)"
	case errors.As(err, &notTLS):
		return " (the server does not speak TLS there: with TLS on, the address must be ClickHouse's secure Native port, tcp_port_secure, usually 9440)"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF):
		// The server hung up: plaintext at a TLS port, or (with TLS 1.3,
		// where the client may write before the server's verdict) a
		// client certificate missing or refused.
		switch {
		case !s.Secure:
			return " (if the address is ClickHouse's secure Native port, turn TLS on: jsonData.secure)"
		case s.TLSAuth:
			return " (the server closed the connection after the TLS handshake: it may have refused the client certificate, secureJsonData.tlsClientCert; use one issued by a CA the server trusts)"
		default:
			return " (the server closed the connection after the TLS handshake: it may demand a client certificate, jsonData.tlsAuth)"
		}
	}
	return ""
}

// storeConfig is the chstore configuration of the settings.
func (s Settings) storeConfig() chstore.Config {
	return chstore.Config{
		Addr:         s.Address,
		Database:     s.Database,
		User:         s.Username,
		Password:     s.Password,
		DialTimeout:  time.Duration(s.DialTimeout),
		ReadTimeout:  time.Duration(s.QueryTimeout),
		MaxOpenConns: s.MaxOpenConns,
		TLS:          s.tls,
	}
}
