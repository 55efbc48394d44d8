import React, { ChangeEvent, useEffect, useState } from 'react';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { Alert, InlineField, InlineFieldRow, InlineSwitch, Input, MultiSelect, Select } from '@grafana/ui';

import { DataSource } from '../datasource';
import { validateQuery } from '../query';
import {
  GROUP_BY,
  HEALTH_VIEWS,
  LeaklineOptions,
  LeaklineQuery,
  LOOKUPS,
  Option,
  QUERY_TYPES,
  SHADOW,
  USES,
} from '../types';

type Props = QueryEditorProps<DataSource, LeaklineQuery, LeaklineOptions>;

const W = 16;

/** Typed query editor: a query type and its filters; no SQL. */
export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const [rules, setRules] = useState<Option[]>([]);
  const [actors, setActors] = useState<Option[]>([]);
  const [channels, setChannels] = useState<Option[]>([]);
  const [severities, setSeverities] = useState<Option[]>([]);

  useEffect(() => {
    const load = (what: 'rules' | 'actors' | 'channels' | 'severities', set: (o: Option[]) => void) =>
      datasource.lookup(what).then(set, () => set([]));
    load('rules', setRules);
    load('actors', setActors);
    load('channels', setChannels);
    load('severities', setSeverities);
  }, [datasource]);

  const type = query.queryType ?? 'findings_over_time';
  const uses = USES[type];
  const update = (patch: Partial<LeaklineQuery>) => {
    onChange({ ...query, ...patch });
    onRunQuery();
  };
  const values = (v: Array<SelectableValue<string>>) => v.map((o) => o.value!).filter(Boolean);
  const withVariables = (opts: Option[], current?: string[]) => {
    const known = new Set(opts.map((o) => o.value));
    return [...opts, ...(current ?? []).filter((c) => !known.has(c)).map((c) => ({ label: c, value: c }))];
  };
  const problem = validateQuery({ ...query, queryType: type });

  return (
    <>
      <InlineFieldRow>
        <InlineField label="Query type" labelWidth={W}>
          <Select width={30} options={QUERY_TYPES} value={type} onChange={(v) => update({ queryType: v.value })} />
        </InlineField>
        {uses.groupBy && (
          <InlineField label="Group by" labelWidth={W}>
            <Select width={20} options={GROUP_BY} value={query.groupBy ?? ''} onChange={(v) => update({ groupBy: v.value })} />
          </InlineField>
        )}
        {uses.view && (
          <InlineField label="View" labelWidth={W}>
            <Select width={20} options={HEALTH_VIEWS} value={query.view ?? ''} onChange={(v) => update({ view: v.value })} />
          </InlineField>
        )}
        {uses.lookup && (
          <InlineField label="Values of" labelWidth={W}>
            <Select width={20} options={LOOKUPS} value={query.lookup} onChange={(v) => update({ lookup: v.value })} />
          </InlineField>
        )}
        {uses.limit && (
          <InlineField label="Limit" labelWidth={W}>
            <Input
              width={12}
              type="number"
              min={0}
              max={10000}
              value={query.limit ?? ''}
              onChange={(e: ChangeEvent<HTMLInputElement>) => onChange({ ...query, limit: e.target.value === '' ? undefined : Number(e.target.value) })}
              onBlur={onRunQuery}
            />
          </InlineField>
        )}
        {uses.stream && (
          <InlineField label="Live" labelWidth={W} tooltip="Append new findings as they are stored">
            <InlineSwitch value={!!query.stream} onChange={(e) => update({ stream: e.currentTarget.checked })} />
          </InlineField>
        )}
      </InlineFieldRow>
      {uses.filters && (
        <>
          <InlineFieldRow>
            <InlineField label="Rules" labelWidth={W}>
              <MultiSelect width={40} allowCustomValue options={withVariables(rules, query.rules)} value={query.rules ?? []}
                onChange={(v) => update({ rules: values(v) })} />
            </InlineField>
            <InlineField label="Severities" labelWidth={W}>
              <MultiSelect width={30} allowCustomValue options={withVariables(severities, query.severities)} value={query.severities ?? []}
                onChange={(v) => update({ severities: values(v) })} />
            </InlineField>
          </InlineFieldRow>
          <InlineFieldRow>
            <InlineField label="Channels" labelWidth={W}>
              <MultiSelect width={40} allowCustomValue options={withVariables(channels, query.channels)} value={query.channels ?? []}
                onChange={(v) => update({ channels: values(v) })} />
            </InlineField>
            <InlineField label="Actor" labelWidth={W} tooltip="One actor, e.g. $actor">
              <Input width={30} value={query.actor ?? ''} placeholder="$actor"
                onChange={(e: ChangeEvent<HTMLInputElement>) => onChange({ ...query, actor: e.target.value })} onBlur={onRunQuery} />
            </InlineField>
          </InlineFieldRow>
          <InlineFieldRow>
            <InlineField label="Actors" labelWidth={W}>
              <MultiSelect width={40} allowCustomValue options={withVariables(actors, query.actors)} value={query.actors ?? []}
                onChange={(v) => update({ actors: values(v) })} />
            </InlineField>
            <InlineField label="Rule mode" labelWidth={W}>
              <Select width={30} options={SHADOW} value={query.shadow ?? ''} onChange={(v) => update({ shadow: v.value })} />
            </InlineField>
          </InlineFieldRow>
        </>
      )}
      {uses.risk && (
        <InlineFieldRow>
          <InlineField label="Half-life (h)" labelWidth={W} tooltip="Risk decay half-life; default 168 (7 days)">
            <Input width={12} type="number" min={0} value={query.halfLifeHours ?? ''} placeholder="168"
              onChange={(e: ChangeEvent<HTMLInputElement>) => onChange({ ...query, halfLifeHours: e.target.value === '' ? undefined : Number(e.target.value) })}
              onBlur={onRunQuery} />
          </InlineField>
          <InlineField label="Count shadow rules" labelWidth={W}>
            <InlineSwitch value={!!query.includeShadow} onChange={(e) => update({ includeShadow: e.currentTarget.checked })} />
          </InlineField>
        </InlineFieldRow>
      )}
      {problem !== '' && <Alert severity="warning" title={problem} />}
    </>
  );
}
