// Types and constants shared by the Leakline datasource's frontend. They
// mirror pkg/grafana's Query (query.go) and Settings (settings.go); the Go
// side validates everything again.
import type { DataQuery, DataSourceJsonData } from '@grafana/schema';

/** Query types: the backend runs one fixed query per type (no free SQL). */
export type QueryType =
  | 'findings'
  | 'evidence'
  | 'findings_over_time'
  | 'top_users'
  | 'user_timeline'
  | 'rule_performance'
  | 'pipeline_health'
  | 'lookup';

export type GroupBy = '' | 'rule' | 'severity' | 'channel' | 'mode' | 'pack_version' | 'rule_version';
export type Shadow = '' | 'live' | 'shadow';
export type HealthView = '' | 'ingest' | 'freshness';
export type Lookup = 'rules' | 'actors' | 'channels' | 'severities';

/** A panel target of the Leakline datasource. */
export interface LeaklineQuery extends DataQuery {
  queryType?: QueryType;
  rules?: string[];
  severities?: string[];
  channels?: string[];
  actors?: string[];
  /** One actor (the Investigation dashboard's $actor); adds to actors. */
  actor?: string;
  shadow?: Shadow;
  groupBy?: GroupBy;
  limit?: number;
  halfLifeHours?: number;
  includeShadow?: boolean;
  view?: HealthView;
  lookup?: Lookup;
  /** findings: keep the panel live (Grafana Live channel ds/<uid>/findings). */
  stream?: boolean;
}

/**
 * jsonData of the datasource. The password and the TLS certificates and key
 * are in secureJsonData. The TLS keys are the names Grafana's own
 * datasources use.
 */
export interface LeaklineOptions extends DataSourceJsonData {
  address?: string;
  database?: string;
  username?: string;
  dialTimeout?: string;
  queryTimeout?: string;
  maxOpenConns?: number;
  streamInterval?: string;
  /** TLS to ClickHouse's secure Native port (usually 9440). */
  secure?: boolean;
  /** Trust the CA of secureJsonData.tlsCACert instead of the system's roots. */
  tlsAuthWithCACert?: boolean;
  /** Mutual TLS: present secureJsonData.tlsClientCert and tlsClientKey. */
  tlsAuth?: boolean;
  /** Name checked in the server's certificate (default: the address's host). */
  serverName?: string;
  /** Refused by the backend: certificates are always verified. Never set by the editor. */
  tlsSkipVerify?: boolean;
}

/** secureJsonData of the datasource (PEM text for the TLS keys). */
export interface LeaklineSecureOptions {
  password?: string;
  tlsCACert?: string;
  tlsClientCert?: string;
  tlsClientKey?: string;
}

export interface Option<T extends string = string> {
  label: string;
  value: T;
  description?: string;
}

export const QUERY_TYPES: Array<Option<QueryType>> = [
  { value: 'findings', label: 'Findings', description: 'Table of findings (latest revision), masked evidence' },
  { value: 'evidence', label: 'Evidence', description: 'One row per masked evidence item' },
  { value: 'findings_over_time', label: 'Findings over time', description: 'Counts per interval by a dimension (alerting)' },
  { value: 'top_users', label: 'Top users', description: 'Actors ranked by decayed risk score' },
  { value: 'user_timeline', label: 'User timeline', description: "One actor's findings and events in time order" },
  { value: 'rule_performance', label: 'Rule performance', description: 'Fires per rule, version, pack, shadow vs live' },
  { value: 'pipeline_health', label: 'Pipeline health', description: 'Findings stored per interval and freshness' },
  { value: 'lookup', label: 'Lookup', description: 'Distinct values, for variables' },
];

export const GROUP_BY: Array<Option<GroupBy>> = [
  { value: '', label: 'Total' },
  { value: 'severity', label: 'Severity' },
  { value: 'rule', label: 'Rule' },
  { value: 'channel', label: 'Channel' },
  { value: 'mode', label: 'Shadow vs live' },
  { value: 'pack_version', label: 'Pack version' },
  { value: 'rule_version', label: 'Rule version' },
];

export const SHADOW: Array<Option<Shadow>> = [
  { value: '', label: 'Live and shadow' },
  { value: 'live', label: 'Live rules only' },
  { value: 'shadow', label: 'Shadow rules only' },
];

export const HEALTH_VIEWS: Array<Option<HealthView>> = [
  { value: '', label: 'Both' },
  { value: 'ingest', label: 'Ingest rate' },
  { value: 'freshness', label: 'Freshness' },
];

export const LOOKUPS: Array<Option<Lookup>> = [
  { value: 'actors', label: 'Actors' },
  { value: 'rules', label: 'Rules' },
  { value: 'channels', label: 'Channels' },
  { value: 'severities', label: 'Severities' },
];

export const SEVERITIES = ['critical', 'high', 'medium', 'low'];

export const DEFAULT_QUERY: Partial<LeaklineQuery> = { queryType: 'findings_over_time', groupBy: 'severity' };

/** Which editor fields a query type uses. */
export const USES: Record<QueryType, { filters: boolean; groupBy?: boolean; risk?: boolean; view?: boolean; lookup?: boolean; stream?: boolean; limit?: boolean }> = {
  findings: { filters: true, limit: true, stream: true },
  evidence: { filters: true, limit: true },
  findings_over_time: { filters: true, groupBy: true },
  top_users: { filters: true, limit: true, risk: true },
  user_timeline: { filters: true, limit: true },
  rule_performance: { filters: true, limit: true },
  pipeline_health: { filters: false, view: true },
  lookup: { filters: false, lookup: true, limit: true },
};
