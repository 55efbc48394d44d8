import React, { ChangeEvent } from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { Alert, FieldSet, InlineField, InlineSwitch, Input, SecretInput, SecretTextArea } from '@grafana/ui';

import { resetSecret, SecretKey, setOption, setSecret, setTLS, validateSettings } from '../settings';
import { LeaklineOptions, LeaklineSecureOptions } from '../types';

type Props = DataSourcePluginOptionsEditorProps<LeaklineOptions, LeaklineSecureOptions>;

const LABEL_WIDTH = 20;

/**
 * Settings: ClickHouse address, TLS and limits in jsonData; the password
 * and the TLS certificates and key in secureJsonData (stored encrypted,
 * never sent back to the browser). There is no switch to skip certificate
 * verification: the backend refuses it.
 */
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields } = options;
  const secure = (options.secureJsonData ?? {}) as LeaklineSecureOptions;
  const problems = validateSettings(options);

  const setText = (key: keyof LeaklineOptions) => (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange(setOption(options, key, e.target.value));
  const setNumber = (key: keyof LeaklineOptions) => (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange(setOption(options, key, e.target.value === '' ? undefined : Number(e.target.value)));
  const setSwitch = (key: 'tlsAuthWithCACert' | 'tlsAuth') => (e: React.FormEvent<HTMLInputElement>) =>
    onOptionsChange(setOption(options, key, e.currentTarget.checked));
  const secretProps = (key: SecretKey) => ({
    isConfigured: Boolean(secureJsonFields?.[key]),
    value: secure[key] ?? '',
    onChange: (e: React.FormEvent<HTMLInputElement | HTMLTextAreaElement>) => onOptionsChange(setSecret(options, key, e.currentTarget.value)),
    onReset: () => onOptionsChange(resetSecret(options, key)),
  });
  const pem = (key: 'tlsCACert' | 'tlsClientCert' | 'tlsClientKey', label: string, tooltip: string, placeholder: string) => (
    <InlineField label={label} labelWidth={LABEL_WIDTH} tooltip={tooltip} invalid={Boolean(problems[key])} error={problems[key]} required>
      <SecretTextArea {...secretProps(key)} cols={64} rows={6} placeholder={placeholder} aria-label={label} />
    </InlineField>
  );

  return (
    <>
      <FieldSet label="ClickHouse">
        <InlineField
          label="Address"
          labelWidth={LABEL_WIDTH}
          tooltip="Native protocol host:port (9000; with TLS the secure port, usually 9440)"
          invalid={Boolean(problems.address)}
          error={problems.address}
          required
        >
          <Input width={40} value={jsonData.address ?? ''} placeholder={jsonData.secure ? 'clickhouse:9440' : 'clickhouse:9000'} onChange={setText('address')} />
        </InlineField>
        <InlineField label="Database" labelWidth={LABEL_WIDTH}>
          <Input width={40} value={jsonData.database ?? ''} placeholder="leakline" onChange={setText('database')} />
        </InlineField>
        <InlineField label="Username" labelWidth={LABEL_WIDTH}>
          <Input width={40} value={jsonData.username ?? ''} placeholder="default" onChange={setText('username')} />
        </InlineField>
        <InlineField label="Password" labelWidth={LABEL_WIDTH} tooltip="Stored encrypted (secureJsonData)">
          <SecretInput width={40} {...secretProps('password')} />
        </InlineField>
      </FieldSet>
      <FieldSet label="TLS">
        {problems.tlsSkipVerify && (
          <Alert severity="error" title="tlsSkipVerify is set">
            {problems.tlsSkipVerify}. Turning TLS off and on again here removes it.
          </Alert>
        )}
        <InlineField label="TLS" labelWidth={LABEL_WIDTH} tooltip="Connect to the secure Native port; the server's certificate is always verified">
          <InlineSwitch
            label="TLS"
            value={Boolean(jsonData.secure)}
            onChange={(e: React.FormEvent<HTMLInputElement>) => onOptionsChange(setTLS(options, e.currentTarget.checked))}
          />
        </InlineField>
        {jsonData.secure && (
          <>
            <InlineField label="Server name" labelWidth={LABEL_WIDTH} tooltip="Name checked in the server's certificate; default: the host of the address">
              <Input width={40} value={jsonData.serverName ?? ''} placeholder="clickhouse.internal" onChange={setText('serverName')} />
            </InlineField>
            <InlineField
              label="With CA certificate"
              labelWidth={LABEL_WIDTH}
              tooltip="Trust this CA (for a private CA) instead of the system's certificate authorities"
            >
              <InlineSwitch label="With CA certificate" value={Boolean(jsonData.tlsAuthWithCACert)} onChange={setSwitch('tlsAuthWithCACert')} />
            </InlineField>
            {jsonData.tlsAuthWithCACert &&
              pem('tlsCACert', 'CA certificate', 'PEM; stored encrypted (secureJsonData.tlsCACert)', 'Begins with -----BEGIN CERTIFICATE-----')}
            <InlineField label="Client certificate" labelWidth={LABEL_WIDTH} tooltip="Mutual TLS: present a client certificate to ClickHouse">
              <InlineSwitch label="Client certificate" value={Boolean(jsonData.tlsAuth)} onChange={setSwitch('tlsAuth')} />
            </InlineField>
            {jsonData.tlsAuth && (
              <>
                {pem('tlsClientCert', 'Client cert', 'PEM; stored encrypted (secureJsonData.tlsClientCert)', 'Begins with -----BEGIN CERTIFICATE-----')}
                {pem('tlsClientKey', 'Client key', 'PEM; stored encrypted (secureJsonData.tlsClientKey)', 'Begins with -----BEGIN PRIVATE KEY-----')}
              </>
            )}
          </>
        )}
      </FieldSet>
      <FieldSet label="Limits">
        <InlineField label="Dial timeout" labelWidth={LABEL_WIDTH} tooltip="Go duration, e.g. 10s">
          <Input width={20} value={jsonData.dialTimeout ?? ''} placeholder="10s" onChange={setText('dialTimeout')} />
        </InlineField>
        <InlineField label="Query timeout" labelWidth={LABEL_WIDTH}>
          <Input width={20} value={jsonData.queryTimeout ?? ''} placeholder="60s" onChange={setText('queryTimeout')} />
        </InlineField>
        <InlineField label="Max connections" labelWidth={LABEL_WIDTH}>
          <Input width={20} type="number" min={1} value={jsonData.maxOpenConns ?? ''} placeholder="4" onChange={setNumber('maxOpenConns')} />
        </InlineField>
        <InlineField label="Live poll interval" labelWidth={LABEL_WIDTH} tooltip="How often the live findings stream polls ClickHouse">
          <Input width={20} value={jsonData.streamInterval ?? ''} placeholder="2s" onChange={setText('streamInterval')} />
        </InlineField>
      </FieldSet>
    </>
  );
}
