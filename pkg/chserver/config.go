package chserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"
)

// systemUsersConfig is the users file of the Debian/RPM packages. When it is
// absent, a minimal one like it (users default and readonly, no password,
// loopback only) is written into the server's directory. A variable for
// tests.
var systemUsersConfig = "/etc/clickhouse-server/users.xml"

// configTemplate uses only settings ClickHouse 18.16 knows; current releases
// accept them too (and still accept the <yandex> root element).
//
// query_log is flushed every second so tests can check what query text
// reaches the server (see usersTemplate for log_queries).
var configTemplate = template.Must(template.New("config").Parse(`<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{{.Dir}}/log/clickhouse-server.log</log>
        <errorlog>{{.Dir}}/log/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <path>{{.Dir}}/data/</path>
    <tmp_path>{{.Dir}}/tmp/</tmp_path>
    <user_files_path>{{.Dir}}/user_files/</user_files_path>
    <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
    <users_config>{{.Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <mlock_executable>false</mlock_executable>
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <flush_interval_milliseconds>1000</flush_interval_milliseconds>
    </query_log>
    <macros>
        <chserver_instance>{{.InstanceID}}</chserver_instance>
    </macros>
{{- if .TLS}}
    <tcp_port_secure>{{.SecurePort}}</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>{{.TLS.CertFile}}</certificateFile>
            <privateKeyFile>{{.TLS.KeyFile}}</privateKeyFile>
{{- if .TLS.ClientCAFile}}
            <verificationMode>strict</verificationMode>
            <caConfig>{{.TLS.ClientCAFile}}</caConfig>
{{- else}}
            <verificationMode>none</verificationMode>
{{- end}}
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
{{- end}}
</yandex>
`))

const minimalUsers = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <readonly>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>readonly</profile>
            <quota>default</quota>
        </readonly>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`

// usersTemplate is merged into the users config (from users.d next to the
// users file the server reads), for the default profile:
//
//   - poll_interval is how often an idle connection's handler wakes to
//     notice a shutdown: at its default of 10 s a SIGTERM with pooled idle
//     client connections open takes 10 s or more; at 1 s about one second.
//   - log_queries=1 is the default of current releases (18.16: 0), so tests
//     can check what query text reaches system.query_log.
//
// It also defines the users of Options.Users (password as SHA-256, loopback
// only, profile default or readonly).
var usersTemplate = template.Must(template.New("users").Parse(`<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <poll_interval>1</poll_interval>
            <log_queries>1</log_queries>
        </default>
    </profiles>
{{- if .}}
    <users>
{{- range .}}
        <{{.Name}}>
            <password_sha256_hex>{{.SHA256}}</password_sha256_hex>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>{{.Profile}}</profile>
            <quota>default</quota>
        </{{.Name}}>
{{- end}}
    </users>
{{- end}}
</yandex>
`))

// writeConfig writes config.xml and the users config and creates the
// directories the server uses.
//
// The users config is Dir/users.xml: a symlink to the system users.xml when
// that exists (so its users and profiles apply unchanged), else a minimal
// one; Dir/users.d/chserver.xml overrides a setting on top of it (the server
// merges users.d next to the users file, and does not resolve the symlink).
func (s *Server) writeConfig() error {
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log", "users.d"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return fmt.Errorf("chserver: create %s: %w", d, err)
		}
	}
	users := filepath.Join(s.dir, "users.xml")
	if err := os.Remove(users); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("chserver: users.xml: %w", err)
	}
	if _, err := os.Stat(systemUsersConfig); err == nil {
		if err := os.Symlink(systemUsersConfig, users); err != nil {
			return fmt.Errorf("chserver: users.xml: %w", err)
		}
	} else if err := os.WriteFile(users, []byte(minimalUsers), 0o644); err != nil {
		return fmt.Errorf("chserver: write users.xml: %w", err)
	}
	if err := s.writeUsers(); err != nil {
		return err
	}
	var dir bytes.Buffer
	if err := xml.EscapeText(&dir, []byte(s.dir)); err != nil {
		return err
	}
	var tlsFiles *TLSFiles
	if s.tls != nil {
		tlsFiles = &TLSFiles{CertFile: xmlText(s.tls.CertFile), KeyFile: xmlText(s.tls.KeyFile), ClientCAFile: xmlText(s.tls.ClientCAFile)}
	}
	var b bytes.Buffer
	err := configTemplate.Execute(&b, map[string]any{
		"Dir":        dir.String(),
		"TCPPort":    s.tcpPort,
		"HTTPPort":   s.httpPort,
		"InstanceID": s.instanceID,
		"SecurePort": s.securePort,
		"TLS":        tlsFiles,
	})
	if err != nil {
		return fmt.Errorf("chserver: config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "config.xml"), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("chserver: write config: %w", err)
	}
	return nil
}

// writeUsers writes users.d/chserver.xml from usersTemplate.
func (s *Server) writeUsers() error {
	type user struct{ Name, SHA256, Profile string }
	var users []user
	for _, u := range s.users {
		sum := sha256.Sum256([]byte(u.Password))
		p := "default"
		if u.ReadOnly {
			p = "readonly"
		}
		users = append(users, user{Name: u.Name, SHA256: hex.EncodeToString(sum[:]), Profile: p})
	}
	var b bytes.Buffer
	if err := usersTemplate.Execute(&b, users); err != nil {
		return fmt.Errorf("chserver: users.d: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "users.d", "chserver.xml"), b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("chserver: write users.d: %w", err)
	}
	return nil
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // writes to a bytes.Buffer cannot fail
	return b.String()
}
