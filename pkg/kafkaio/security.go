package kafkaio

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms Security accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Security says how every kafkaio client protects and authenticates its
// broker connections. The zero value is plaintext without authentication.
//
// Dialer turns it into the kafka.Dialer that goes into Config.Dialer; from
// there every client kafkaio builds takes the same settings: Writers and
// admin/metadata Clients (EnsureTopics, Ping, offsets, topic helpers) through
// Config.transport, Readers, consumer groups and partition replays through
// Config.dialer. There is deliberately no way to skip certificate
// verification.
type Security struct {
	// TLS, when set, wraps every connection in TLS with this configuration
	// (trusted CAs in RootCAs, a client certificate for mutual TLS). An
	// empty ServerName is filled by kafka-go with the host of the address
	// dialled, so each broker's certificate is checked against its own name.
	TLS *tls.Config
	// SASLMechanism is "" (no SASL), SASLPlain, SASLScramSHA256 or
	// SASLScramSHA512.
	SASLMechanism string
	// Username and Password are the SASL credentials. The password never
	// appears in String, in logs or in errors.
	Username, Password string
}

// Enabled reports whether TLS or SASL is configured.
func (s Security) Enabled() bool { return s.TLS != nil || s.SASLMechanism != "" }

// Validate reports what is wrong with the settings, if anything; it never
// echoes the password.
func (s Security) Validate() error {
	var errs []error
	switch s.SASLMechanism {
	case "":
		if s.Username != "" || s.Password != "" {
			errs = append(errs, errors.New("SASL credentials given without a SASL mechanism"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" {
			errs = append(errs, fmt.Errorf("SASL %s needs a username", s.SASLMechanism))
		}
		if s.Password == "" {
			errs = append(errs, fmt.Errorf("SASL %s needs a password", s.SASLMechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("SASL mechanism %q unknown: want %s, %s or %s", s.SASLMechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512))
	}
	if s.TLS != nil && s.TLS.InsecureSkipVerify {
		errs = append(errs, errors.New("TLS without certificate verification is not supported"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafkaio: security: %w", err)
	}
	return nil
}

// Dialer builds the kafka.Dialer for Config.Dialer: the one place where the
// TLS configuration and the SASL mechanism of every kafkaio client are made.
// A Security without TLS and SASL still gets a Dialer (plain TCP).
func (s Security) Dialer(clientID string) (*kafka.Dialer, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if clientID == "" {
		clientID = DefaultClientID
	}
	d := &kafka.Dialer{
		ClientID:  clientID,
		Timeout:   5 * time.Second,
		DualStack: true,
	}
	if s.TLS != nil {
		d.TLS = s.TLS.Clone()
		if d.TLS.MinVersion < tls.VersionTLS12 {
			d.TLS.MinVersion = tls.VersionTLS12
		}
	}
	var (
		m   sasl.Mechanism
		err error
	)
	switch s.SASLMechanism {
	case SASLPlain:
		m = plain.Mechanism{Username: s.Username, Password: s.Password}
	case SASLScramSHA256:
		m, err = scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case SASLScramSHA512:
		m, err = scram.Mechanism(scram.SHA512, s.Username, s.Password)
	}
	if err != nil {
		// xdg-go/scram refuses names and passwords SASLprep rejects; its
		// error does not quote them.
		return nil, fmt.Errorf("kafkaio: security: SASL %s for user %q: %w", s.SASLMechanism, s.Username, err)
	}
	if m != nil {
		d.SASLMechanism = redacted{Mechanism: m, user: s.Username}
	}
	return d, nil
}

// String describes the settings without the password, e.g.
// "tls sasl=SCRAM-SHA-512 user=leakline".
func (s Security) String() string {
	var parts []string
	if s.TLS != nil {
		p := "tls"
		if len(s.TLS.Certificates) > 0 || s.TLS.GetClientCertificate != nil {
			p += "+client-cert"
		}
		if s.TLS.ServerName != "" {
			p += " server-name=" + s.TLS.ServerName
		}
		parts = append(parts, p)
	} else {
		parts = append(parts, "plaintext")
	}
	if s.SASLMechanism != "" {
		parts = append(parts, "sasl="+s.SASLMechanism, fmt.Sprintf("user=%q", s.Username))
	}
	return strings.Join(parts, " ")
}

// GoString keeps %#v from printing the password.
func (s Security) GoString() string { return "kafkaio.Security{" + s.String() + "}" }

// LogValue keeps slog from printing the password.
func (s Security) LogValue() slog.Value { return slog.StringValue(s.String()) }

// redacted wraps a SASL mechanism so that printing a Dialer or a Config
// (%v, %+v, %#v, slog) shows the mechanism and user, never the password
// that kafka-go's plain.Mechanism holds in an exported field.
type redacted struct {
	sasl.Mechanism
	user string
}

func (r redacted) String() string {
	return fmt.Sprintf("%s(user=%q, password redacted)", r.Mechanism.Name(), r.user)
}

func (r redacted) GoString() string     { return r.String() }
func (r redacted) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Format implements fmt.Formatter for every verb.
func (r redacted) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }

// explainConnError adds what to check to an error of a connection the
// broker closed without a Kafka error: brokers (Apache Kafka and kfake alike)
// drop the connection on a failed SASL login and on a plaintext client at a
// TLS listener, which kafka-go reports as a bare EOF or reset. The hint names
// the mechanism and user, never the password.
func (c Config) explainConnError(err error) error {
	// kafka-go's CreateTopics reports a connection lost that way as
	// BrokerNotAvailable.
	if err == nil || !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, kafka.BrokerNotAvailable)) {
		return err
	}
	var tlsOn bool
	var mech, user string
	if d := c.Dialer; d != nil {
		tlsOn = d.TLS != nil
		if d.SASLMechanism != nil {
			mech = d.SASLMechanism.Name()
			if r, ok := d.SASLMechanism.(redacted); ok {
				user = r.user
			}
		}
	}
	var hint string
	switch {
	case mech != "" && tlsOn:
		hint = fmt.Sprintf("SASL %s login as user %q refused? check the mechanism, user and password", mech, user)
	case mech != "":
		hint = fmt.Sprintf("SASL %s login as user %q refused? check the mechanism, user and password; or the broker expects TLS", mech, user)
	case tlsOn:
		hint = "the broker may require SASL authentication"
	default:
		hint = "the broker may require TLS or SASL authentication (plaintext connection without SASL)"
	}
	return fmt.Errorf("%w (broker closed the connection: %s)", err, hint)
}
