// Package testcert generates throw-away X.509 material for tests that run real
// servers with TLS (the embedded Kafka broker, a private ClickHouse): a CA,
// server certificates for loopback names and client certificates for mutual
// TLS, all made in Go with crypto/x509 at test time, written as PEM files
// (servers and Leakline's configuration read files) and usable in memory.
//
// Keys are ECDSA P-256 in PKCS#8 PEM, certificates valid from an hour ago for
// a day. Nothing here is fit for production.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority that issues certificates.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	// CertFile is the CA certificate as a PEM file, for the clients' trust.
	CertFile string
	dir      string
}

// Pair is a certificate with its private key, as files and in memory.
type Pair struct {
	// CertFile and KeyFile hold the PEM certificate and PKCS#8 key.
	CertFile, KeyFile string
	// TLS is the same pair for a tls.Config.
	TLS tls.Certificate
}

// NewCA creates a CA named name and writes its certificate to
// dir/<name>-ca.pem.
func NewCA(dir, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: CA key: %w", err)
	}
	tmpl := template(pkix.Name{CommonName: name + " test CA"})
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testcert: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: CA certificate: %w", err)
	}
	ca := &CA{cert: cert, key: key, dir: dir, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.CertFile = filepath.Join(dir, name+"-ca.pem")
	if err := os.WriteFile(ca.CertFile, ca.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	return ca, nil
}

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Server issues a server certificate for hosts (DNS names or IP addresses;
// default "localhost" and 127.0.0.1) and writes it to dir/<name>.pem and
// dir/<name>-key.pem.
func (ca *CA) Server(name string, hosts ...string) (*Pair, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
	}
	tmpl := template(pkix.Name{CommonName: hosts[0]})
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(name, tmpl)
}

// Client issues a client certificate for mutual TLS with common name cn and
// writes it to dir/<name>.pem and dir/<name>-key.pem.
func (ca *CA) Client(name, cn string) (*Pair, error) {
	tmpl := template(pkix.Name{CommonName: cn})
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return ca.issue(name, tmpl)
}

// ServerConfig is a tls.Config for a server presenting pair; with
// requireClientCert, clients must present a certificate issued by ca
// (mutual TLS).
func (ca *CA) ServerConfig(pair *Pair, requireClientCert bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{pair.TLS}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = ca.Pool()
	}
	return c
}

func (ca *CA) issue(name string, tmpl *x509.Certificate) (*Pair, error) {
	if name == "" {
		return nil, errors.New("testcert: empty name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("testcert: certificate %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testcert: key %s: %w", name, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	p := &Pair{CertFile: filepath.Join(ca.dir, name+".pem"), KeyFile: filepath.Join(ca.dir, name+"-key.pem")}
	if err := os.WriteFile(p.CertFile, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	if err := os.WriteFile(p.KeyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("testcert: %w", err)
	}
	if p.TLS, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("testcert: pair %s: %w", name, err)
	}
	return p, nil
}

func template(subject pkix.Name) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
	}
}
