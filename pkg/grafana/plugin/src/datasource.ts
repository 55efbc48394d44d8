import {
  CoreApp,
  DataSourceInstanceSettings,
  DataSourceVariableSupport,
  ScopedVars,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { interpolateQuery } from './query';
import { DEFAULT_QUERY, LeaklineOptions, LeaklineQuery, Option } from './types';

/** Evidence the reveal resource returns (grafana.RevealResponse). */
export interface RevealResponse {
  finding_id: string;
  evidence: Array<{ type: string; masked: string; token: string }>;
  raw_values_stored: false;
  note: string;
  audit_id: string;
}

/**
 * The Leakline datasource: queries run in the Go backend (pkg/grafana);
 * this class interpolates variables, supplies editor dropdowns from the
 * backend's resources, and asks for an audited reveal.
 */
export class DataSource extends DataSourceWithBackend<LeaklineQuery, LeaklineOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<LeaklineOptions>) {
    super(instanceSettings);
    this.variables = new LeaklineVariableSupport();
  }

  getDefaultQuery(_: CoreApp): Partial<LeaklineQuery> {
    return DEFAULT_QUERY;
  }

  applyTemplateVariables(query: LeaklineQuery, scopedVars: ScopedVars): LeaklineQuery {
    const srv = getTemplateSrv();
    return interpolateQuery(query, (text, format) => srv.replace(text, scopedVars, format));
  }

  filterQuery(query: LeaklineQuery): boolean {
    return !query.hide && !!query.queryType;
  }

  /** Distinct values for a dropdown: rules, actors, channels or severities. */
  lookup(what: 'rules' | 'actors' | 'channels' | 'severities', prefix = ''): Promise<Option[]> {
    return this.getResource<Option[]>(what, prefix ? { prefix } : undefined);
  }

  /** Reveals a finding's evidence (Editors and Admins; audited, reason required). */
  reveal(findingId: string, reason: string): Promise<RevealResponse> {
    return this.postResource<RevealResponse>('reveal', { finding_id: findingId, reason });
  }
}

/** Query variables use the datasource's own editor (e.g. a lookup of actors). */
class LeaklineVariableSupport extends DataSourceVariableSupport<DataSource> {}
