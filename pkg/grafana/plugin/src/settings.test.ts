import assert from 'node:assert/strict';
import { test } from 'node:test';

import { hasSecret, resetSecret, setOption, setSecret, setTLS, Settings, validateSettings } from './settings';
import { LeaklineOptions, LeaklineSecureOptions } from './types';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n';

// settings are a datasource's settings as Grafana hands them to the editor.
function settings(jsonData: LeaklineOptions, secureJsonFields: Record<string, boolean> = {}, secureJsonData?: LeaklineSecureOptions): Settings {
  return {
    id: 1,
    uid: 'leakline',
    orgId: 1,
    name: 'Leakline',
    type: 'leakline-findings-datasource',
    typeName: 'Leakline Findings',
    typeLogoUrl: '',
    access: 'proxy',
    url: '',
    user: '',
    database: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    jsonData,
    secureJsonFields,
    secureJsonData,
  };
}

test('setTLS on keeps the TLS choices and drops tlsSkipVerify; off clears what needs TLS', () => {
  const s = settings({ address: 'ch:9440', tlsAuthWithCACert: true, serverName: 'ch', tlsSkipVerify: true }, { tlsCACert: true });
  const on = setTLS(s, true);
  assert.deepEqual(on.jsonData, { address: 'ch:9440', secure: true, tlsAuthWithCACert: true, serverName: 'ch' });
  const off = setTLS({ ...on, jsonData: { ...on.jsonData, tlsAuth: true } }, false);
  assert.deepEqual(JSON.parse(JSON.stringify(off.jsonData)), { address: 'ch:9440', secure: false, tlsAuthWithCACert: false, tlsAuth: false });
  // Stored certificates stay (Grafana keeps them; the backend ignores them while their switch is off).
  assert.deepEqual(off.secureJsonFields, { tlsCACert: true });
  // The input is not modified.
  assert.equal(s.jsonData.tlsSkipVerify, true);
});

test('secrets: entering, resetting and whether one is there', () => {
  const s = settings({ address: 'ch:9440', secure: true }, { password: true, tlsCACert: true });
  assert.equal(hasSecret(s, 'password'), true);
  assert.equal(hasSecret(s, 'tlsClientKey'), false);
  const entered = setSecret(s, 'tlsClientKey', KEY);
  assert.equal(entered.secureJsonData?.tlsClientKey, KEY);
  assert.equal(hasSecret(entered, 'tlsClientKey'), true);
  assert.equal(hasSecret(setSecret(s, 'tlsClientKey', '  \n'), 'tlsClientKey'), false);
  const reset = resetSecret(entered, 'tlsCACert');
  assert.deepEqual(reset.secureJsonFields, { password: true, tlsCACert: false });
  assert.deepEqual(reset.secureJsonData, { tlsClientKey: KEY, tlsCACert: '' });
  assert.equal(hasSecret(reset, 'tlsCACert'), false);
  assert.equal(setOption(s, 'serverName', 'ch.internal').jsonData.serverName, 'ch.internal');
});

test('validateSettings says what the backend would refuse, at the field', () => {
  const cases: Array<[string, Settings, Record<string, string>]> = [
    ['plain', settings({ address: 'ch:9000' }), {}],
    ['no address', settings({}), { address: 'Required: the ClickHouse Native protocol host:port' }],
    ['TLS at the plain port', settings({ address: 'ch:9000', secure: true }), { address: 'With TLS on, use the secure Native port (tcp_port_secure, usually 9440), not 9000' }],
    ['TLS, system roots', settings({ address: 'ch:9440', secure: true }), {}],
    ['CA switch, no CA', settings({ address: 'ch:9440', secure: true, tlsAuthWithCACert: true }), { tlsCACert: 'Paste the CA certificate (PEM) that signed the server\u2019s certificate' }],
    ['CA stored', settings({ address: 'ch:9440', secure: true, tlsAuthWithCACert: true }, { tlsCACert: true }), {}],
    ['CA entered', settings({ address: 'ch:9440', secure: true, tlsAuthWithCACert: true }, {}, { tlsCACert: CA }), {}],
    ['CA not PEM', settings({ address: 'ch:9440', secure: true, tlsAuthWithCACert: true }, {}, { tlsCACert: 'hello' }), { tlsCACert: 'Not a PEM certificate (-----BEGIN CERTIFICATE-----)' }],
    [
      'mutual TLS, nothing',
      settings({ address: 'ch:9440', secure: true, tlsAuth: true }),
      { tlsClientCert: 'Mutual TLS needs the client certificate (PEM)', tlsClientKey: 'Mutual TLS needs the client certificate\u2019s key (PEM)' },
    ],
    ['mutual TLS, stored', settings({ address: 'ch:9440', secure: true, tlsAuth: true }, { tlsClientCert: true, tlsClientKey: true }), {}],
    [
      'mutual TLS, swapped',
      settings({ address: 'ch:9440', secure: true, tlsAuth: true }, {}, { tlsClientCert: KEY, tlsClientKey: CA }),
      { tlsClientCert: 'Not a PEM certificate (-----BEGIN CERTIFICATE-----)', tlsClientKey: 'Not a PEM private key (-----BEGIN PRIVATE KEY-----)' },
    ],
    ['switches ignored with TLS off', settings({ address: 'ch:9000', tlsAuth: true, tlsAuthWithCACert: true }), {}],
    ['skip verify', settings({ address: 'ch:9440', secure: true, tlsSkipVerify: true }), { tlsSkipVerify: 'Certificate verification cannot be turned off; trust the server\u2019s CA instead' }],
  ];
  for (const [name, s, want] of cases) {
    assert.deepEqual(validateSettings(s), want, name);
  }
});
