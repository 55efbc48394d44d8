package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/leakline/leakline/pkg/kafkaio"
)

// TLSFiles name the PEM files of a TLS client configuration. There is
// deliberately no option to skip certificate verification: trust a private
// CA with CAFile instead.
type TLSFiles struct {
	// Enabled turns TLS on; naming any file or a server name does too.
	Enabled bool
	// CAFile holds the CA certificates that sign the server's certificate.
	// Empty: the system's roots.
	CAFile string
	// CertFile and KeyFile hold the client certificate and its key, for
	// servers that require mutual TLS. Both or neither.
	CertFile, KeyFile string
	// ServerName is the name checked in the server's certificate. Empty:
	// the host of the address dialled.
	ServerName string
}

// On reports whether TLS is wanted.
func (f TLSFiles) On() bool {
	return f.Enabled || f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" || f.ServerName != ""
}

// Config loads the files into a tls.Config (TLS 1.2 or later), or returns
// nil when TLS is off. Every problem is reported at once; errors name files,
// never their contents.
func (f TLSFiles) Config() (*tls.Config, error) {
	if !f.On() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	var errs []error
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("CA file: %w", err))
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("CA file %s: no PEM certificate in it", f.CAFile))
			}
			c.RootCAs = pool
		}
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("client certificate %s / key %s: %w", f.CertFile, f.KeyFile, err))
		}
		c.Certificates = []tls.Certificate{pair}
	case f.CertFile != "" || f.KeyFile != "":
		errs = append(errs, errors.New("a client certificate needs both the certificate file and the key file"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// tlsFlags registers -PREFIX-tls, -PREFIX-tls-ca-file, -PREFIX-tls-cert-file,
// -PREFIX-tls-key-file and -PREFIX-tls-server-name with their ENV_TLS*
// environment variables.
type tlsFlags struct {
	enabled                      *bool
	ca, cert, key, serverName    *string
	envErr                       error
	flagPrefix, envPrefix, whose string
}

func registerTLS(fs *flag.FlagSet, getenv Getenv, flagPrefix, envPrefix, whose string) *tlsFlags {
	t := &tlsFlags{flagPrefix: flagPrefix, envPrefix: envPrefix, whose: whose}
	s := func(name, env, usage string) *string {
		return fs.String(name, getenv(env), usage+" (env "+env+")")
	}
	on := false
	if v := getenv(envPrefix + "_TLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			t.envErr = fmt.Errorf("%s_TLS: %q is not true or false", envPrefix, v)
		}
		on = b
	}
	whoses := whose + "'s"
	if strings.HasSuffix(whose, "s") {
		whoses = whose + "'"
	}
	t.enabled = fs.Bool(flagPrefix+"-tls", on, "connect to "+whose+" over TLS, verifying the certificate (implied by the other "+flagPrefix+"-tls-* flags) (env "+envPrefix+"_TLS)")
	t.ca = s(flagPrefix+"-tls-ca-file", envPrefix+"_TLS_CA_FILE", "PEM file of the CAs that sign "+whoses+" certificates (default: the system roots)")
	t.cert = s(flagPrefix+"-tls-cert-file", envPrefix+"_TLS_CERT_FILE", "PEM client certificate for mutual TLS with "+whose)
	t.key = s(flagPrefix+"-tls-key-file", envPrefix+"_TLS_KEY_FILE", "PEM key of the client certificate (secret)")
	t.serverName = s(flagPrefix+"-tls-server-name", envPrefix+"_TLS_SERVER_NAME", "name expected in "+whoses+" certificates (default: the host dialled)")
	return t
}

func (t *tlsFlags) config() (*tls.Config, error) {
	if t.envErr != nil {
		return nil, t.envErr
	}
	c, err := TLSFiles{Enabled: *t.enabled, CAFile: *t.ca, CertFile: *t.cert, KeyFile: *t.key, ServerName: *t.serverName}.Config()
	if err != nil {
		return nil, fmt.Errorf("%s TLS: %w", t.whose, err)
	}
	return c, nil
}

// KafkaSecurityFlags are the Kafka TLS and SASL flags, shared by every
// service and command that talks to Kafka.
type KafkaSecurityFlags struct {
	tls                               *tlsFlags
	mechanism, username, passwordFile *string
	getenv                            Getenv
}

// RegisterKafkaSecurity adds the Kafka TLS and SASL flags to fs, with
// defaults from getenv (nil: os.Getenv):
//
//	-kafka-tls, -kafka-tls-ca-file, -kafka-tls-cert-file, -kafka-tls-key-file,
//	-kafka-tls-server-name, -kafka-sasl-mechanism, -kafka-sasl-username,
//	-kafka-sasl-password-file (or env LEAKLINE_KAFKA_SASL_PASSWORD)
func RegisterKafkaSecurity(fs *flag.FlagSet, getenv Getenv) *KafkaSecurityFlags {
	if getenv == nil {
		getenv = os.Getenv
	}
	k := &KafkaSecurityFlags{getenv: getenv}
	s := func(name, env, usage string) *string {
		return fs.String(name, getenv(env), usage+" (env "+env+")")
	}
	k.tls = registerTLS(fs, getenv, "kafka", "LEAKLINE_KAFKA", "the Kafka brokers")
	k.mechanism = s("kafka-sasl-mechanism", "LEAKLINE_KAFKA_SASL_MECHANISM", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	k.username = s("kafka-sasl-username", "LEAKLINE_KAFKA_SASL_USERNAME", "SASL user name")
	k.passwordFile = s("kafka-sasl-password-file", "LEAKLINE_KAFKA_SASL_PASSWORD_FILE", "file holding the SASL password (or env LEAKLINE_KAFKA_SASL_PASSWORD)")
	return k
}

// Security returns the Kafka security settings the flags describe; every
// problem is reported at once, and no error holds the password.
func (k *KafkaSecurityFlags) Security() (kafkaio.Security, error) {
	var errs []error
	var sec kafkaio.Security
	var err error
	if sec.TLS, err = k.tls.config(); err != nil {
		errs = append(errs, err)
	}
	sec.SASLMechanism = strings.ToUpper(strings.TrimSpace(*k.mechanism))
	sec.Username = *k.username
	pw, err := Secret(k.getenv, *k.passwordFile, "LEAKLINE_KAFKA_SASL_PASSWORD")
	if err != nil {
		errs = append(errs, fmt.Errorf("kafka SASL password: %w", err))
	}
	sec.Password = string(pw)
	if err == nil {
		if err := sec.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return sec, errors.Join(errs...)
}

// Apply sets cfg.Dialer from the flags, so that every client built from cfg
// uses the same TLS and SASL settings.
func (k *KafkaSecurityFlags) Apply(cfg *kafkaio.Config) error {
	sec, err := k.Security()
	if err != nil {
		return err
	}
	d, err := sec.Dialer(cfg.ClientID)
	if err != nil {
		return err
	}
	cfg.Dialer = d
	return nil
}

// ClickHouseTLSFromEnv is the ClickHouse TLS configuration of the
// LEAKLINE_CLICKHOUSE_TLS* environment variables alone, for commands that
// take no ClickHouse flags (nil when TLS is off).
func ClickHouseTLSFromEnv(getenv Getenv) (*tls.Config, error) {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	return registerTLS(fs, getenv, "clickhouse", "LEAKLINE_CLICKHOUSE", "ClickHouse").config()
}
