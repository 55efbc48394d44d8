// The config editor's logic, kept apart from React so that it is unit
// tested: how each change updates the datasource settings, and which
// settings the backend (pkg/grafana settings.go) would refuse.
import type { DataSourceSettings } from '@grafana/data';

import { LeaklineOptions, LeaklineSecureOptions } from './types';

export type Settings = DataSourceSettings<LeaklineOptions, LeaklineSecureOptions>;

/** The secureJsonData keys, each edited with a secret field. */
export type SecretKey = keyof LeaklineSecureOptions;

/** The port of ClickHouse's Native protocol without TLS. */
const PLAIN_NATIVE_PORT = '9000';

/**
 * setTLS turns TLS on or off. Off also turns off the CA and client
 * certificate switches and clears the server name, which the backend
 * refuses without TLS; stored certificates stay in secureJsonData, unused,
 * as in Grafana's datasources. Verification can never be turned off: any
 * tlsSkipVerify left by an old provisioning file is removed.
 */
export function setTLS(options: Settings, on: boolean): Settings {
  const { tlsSkipVerify: _ignored, ...jsonData } = options.jsonData;
  if (on) {
    return { ...options, jsonData: { ...jsonData, secure: true } };
  }
  return { ...options, jsonData: { ...jsonData, secure: false, tlsAuthWithCACert: false, tlsAuth: false, serverName: undefined } };
}

/** setOption sets one jsonData value. */
export function setOption<K extends keyof LeaklineOptions>(options: Settings, key: K, value: LeaklineOptions[K]): Settings {
  return { ...options, jsonData: { ...options.jsonData, [key]: value } };
}

/** setSecret sets a secureJsonData value being entered. */
export function setSecret(options: Settings, key: SecretKey, value: string): Settings {
  return { ...options, secureJsonData: { ...(options.secureJsonData ?? {}), [key]: value } };
}

/** resetSecret forgets a stored secret (the Reset button of a secret field). */
export function resetSecret(options: Settings, key: SecretKey): Settings {
  return {
    ...options,
    secureJsonFields: { ...options.secureJsonFields, [key]: false },
    secureJsonData: { ...(options.secureJsonData ?? {}), [key]: '' },
  };
}

/** hasSecret says whether a secret is stored or being entered. */
export function hasSecret(options: Settings, key: SecretKey): boolean {
  return Boolean(options.secureJsonFields?.[key]) || (options.secureJsonData?.[key] ?? '').trim() !== '';
}

/** A problem with the settings, shown at the field it names. */
export type Problems = Partial<Record<'address' | 'tlsCACert' | 'tlsClientCert' | 'tlsClientKey' | 'tlsSkipVerify', string>>;

const PEM_CERT = '-----BEGIN CERTIFICATE-----';
const PEM_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/**
 * validateSettings lists what the backend would refuse (it checks again,
 * and parses the certificates), plus a likely wrong port with TLS on.
 * Stored secrets are not visible here; only text being entered is checked.
 */
export function validateSettings(options: Settings): Problems {
  const j = options.jsonData;
  const entered = options.secureJsonData ?? {};
  const p: Problems = {};
  const address = (j.address ?? '').trim();
  if (address === '') {
    p.address = 'Required: the ClickHouse Native protocol host:port';
  } else if (j.secure && address.endsWith(':' + PLAIN_NATIVE_PORT)) {
    p.address = 'With TLS on, use the secure Native port (tcp_port_secure, usually 9440), not 9000';
  }
  if (j.tlsSkipVerify) {
    p.tlsSkipVerify = 'Certificate verification cannot be turned off; trust the server\u2019s CA instead';
  }
  if (!j.secure) {
    return p;
  }
  if (j.tlsAuthWithCACert) {
    if (!hasSecret(options, 'tlsCACert')) {
      p.tlsCACert = 'Paste the CA certificate (PEM) that signed the server\u2019s certificate';
    } else if (entered.tlsCACert && !entered.tlsCACert.includes(PEM_CERT)) {
      p.tlsCACert = 'Not a PEM certificate (-----BEGIN CERTIFICATE-----)';
    }
  }
  if (j.tlsAuth) {
    if (!hasSecret(options, 'tlsClientCert')) {
      p.tlsClientCert = 'Mutual TLS needs the client certificate (PEM)';
    } else if (entered.tlsClientCert && !entered.tlsClientCert.includes(PEM_CERT)) {
      p.tlsClientCert = 'Not a PEM certificate (-----BEGIN CERTIFICATE-----)';
    }
    if (!hasSecret(options, 'tlsClientKey')) {
      p.tlsClientKey = 'Mutual TLS needs the client certificate\u2019s key (PEM)';
    } else if (entered.tlsClientKey && !PEM_KEY.test(entered.tlsClientKey)) {
      p.tlsClientKey = 'Not a PEM private key (-----BEGIN PRIVATE KEY-----)';
    }
  }
  return p;
}
