package grafana

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

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

// Settings are a datasource instance's settings: jsonData plus the password
// from secureJsonData.
//
// jsonData (all optional except address):
//
//	{
//	  "address": "clickhouse:9000",   // Native protocol host:port
//	  "database": "leakline",
//	  "username": "grafana",          // default "default"
//	  "dialTimeout": "10s",           // Go duration, or seconds as a number
//	  "queryTimeout": "60s",
//	  "maxOpenConns": 4,
//	  "streamInterval": "2s"          // how often the live stream polls
//	}
//
// secureJsonData: {"password": "..."}. A password in jsonData is refused:
// jsonData is stored and shown in clear text.
type Settings struct {
	Address        string   `json:"address"`
	Database       string   `json:"database"`
	Username       string   `json:"username"`
	DialTimeout    Duration `json:"dialTimeout"`
	QueryTimeout   Duration `json:"queryTimeout"`
	MaxOpenConns   int      `json:"maxOpenConns"`
	StreamInterval Duration `json:"streamInterval"`

	// Password comes from secureJsonData, never from jsonData.
	Password string `json:"-"`
}

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

// secretKeys are jsonData keys that must live in secureJsonData instead.
var secretKeys = []string{"password", "secret", "token"}

// LoadSettings reads and validates an instance's settings.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var set Settings
	if len(bytes.TrimSpace(s.JSONData)) > 0 {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(s.JSONData, &raw); err != nil {
			return set, fmt.Errorf("leakline datasource settings: jsonData is not a JSON object: %w", err)
		}
		for k := range raw {
			for _, secret := range secretKeys {
				if strings.Contains(strings.ToLower(k), secret) {
					return set, fmt.Errorf("leakline datasource settings: jsonData has %q: secrets belong in secureJsonData (it is stored encrypted), never in jsonData", k)
				}
			}
		}
		if err := json.Unmarshal(s.JSONData, &set); err != nil {
			return set, fmt.Errorf("leakline datasource settings: jsonData: %w", err)
		}
	}
	set.Password = s.DecryptedSecureJSONData["password"]
	set.Address = strings.TrimSpace(set.Address)
	if set.Address == "" {
		return set, errors.New("leakline datasource settings: jsonData.address (ClickHouse Native host:port) is required")
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
			return set, fmt.Errorf("leakline datasource settings: jsonData.%s is negative", d.name)
		case *d.v == 0:
			*d.v = Duration(d.def)
		}
	}
	if time.Duration(set.StreamInterval) < MinStreamInterval {
		set.StreamInterval = Duration(MinStreamInterval)
	}
	switch {
	case set.MaxOpenConns < 0:
		return set, errors.New("leakline datasource settings: jsonData.maxOpenConns is negative")
	case set.MaxOpenConns == 0:
		set.MaxOpenConns = DefaultMaxOpenConns
	}
	return set, nil
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
	}
}
