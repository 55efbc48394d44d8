import React, { ChangeEvent } from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { FieldSet, InlineField, Input, SecretInput } from '@grafana/ui';

import { LeaklineOptions, LeaklineSecureOptions } from '../types';

type Props = DataSourcePluginOptionsEditorProps<LeaklineOptions, LeaklineSecureOptions>;

const LABEL_WIDTH = 20;

/** Settings: ClickHouse address and limits in jsonData, the password in secureJsonData. */
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields } = options;
  const secure = (options.secureJsonData ?? {}) as LeaklineSecureOptions;

  const setText = (key: keyof LeaklineOptions) => (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, [key]: e.target.value } });
  const setNumber = (key: keyof LeaklineOptions) => (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, [key]: e.target.value === '' ? undefined : Number(e.target.value) } });

  return (
    <>
      <FieldSet label="ClickHouse">
        <InlineField label="Address" labelWidth={LABEL_WIDTH} tooltip="Native protocol host:port (usually 9000)" required>
          <Input width={40} value={jsonData.address ?? ''} placeholder="clickhouse:9000" onChange={setText('address')} />
        </InlineField>
        <InlineField label="Database" labelWidth={LABEL_WIDTH}>
          <Input width={40} value={jsonData.database ?? ''} placeholder="leakline" onChange={setText('database')} />
        </InlineField>
        <InlineField label="Username" labelWidth={LABEL_WIDTH}>
          <Input width={40} value={jsonData.username ?? ''} placeholder="default" onChange={setText('username')} />
        </InlineField>
        <InlineField label="Password" labelWidth={LABEL_WIDTH} tooltip="Stored encrypted (secureJsonData)">
          <SecretInput
            width={40}
            isConfigured={Boolean(secureJsonFields?.password)}
            value={secure.password ?? ''}
            onChange={(e: ChangeEvent<HTMLInputElement>) =>
              onOptionsChange({ ...options, secureJsonData: { ...secure, password: e.target.value } })
            }
            onReset={() =>
              onOptionsChange({
                ...options,
                secureJsonFields: { ...secureJsonFields, password: false },
                secureJsonData: { ...secure, password: '' },
              })
            }
          />
        </InlineField>
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
