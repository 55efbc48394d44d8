// Pure query helpers (no Grafana runtime): template interpolation,
// validation and the Investigation deep link. Unit-tested with node:test.
import type { LeaklineQuery } from './types';

/** Grafana's template replacement with a custom format (templateSrv.replace). */
export type Replace = (text: string, format: (value: string | string[]) => string) => string;

/** Separates the values of a multi-value variable during interpolation. */
const SEP = '\u001f';

const joinValues = (value: string | string[]): string => (Array.isArray(value) ? value.join(SEP) : value);

/**
 * Expands a list filter: each entry may be a (multi-value) variable; the
 * result is flat, trimmed, without empty entries or duplicates.
 */
export function expandList(values: string[] | undefined, replace: Replace): string[] | undefined {
  if (!values || values.length === 0) {
    return values;
  }
  const out: string[] = [];
  for (const v of values) {
    for (const part of replace(v, joinValues).split(SEP)) {
      const p = part.trim();
      if (p !== '' && !out.includes(p)) {
        out.push(p);
      }
    }
  }
  return out;
}

/** Interpolates the query's variables as Grafana does before sending it. */
export function interpolateQuery(q: LeaklineQuery, replace: Replace): LeaklineQuery {
  const single = (v: string | undefined) => (v === undefined ? v : replace(v, (x) => (Array.isArray(x) ? x[0] ?? '' : x)));
  return {
    ...q,
    rules: expandList(q.rules, replace),
    severities: expandList(q.severities, replace),
    channels: expandList(q.channels, replace),
    actors: expandList(q.actors, replace),
    actor: single(q.actor),
  };
}

/** What the backend will refuse, said before the query runs ('' if fine). */
export function validateQuery(q: LeaklineQuery): string {
  if (!q.queryType) {
    return 'Choose a query type';
  }
  if (q.limit !== undefined && (q.limit < 0 || q.limit > 10000 || !Number.isInteger(q.limit))) {
    return 'Limit must be a whole number from 0 to 10000';
  }
  if (q.queryType === 'user_timeline') {
    const actors = new Set([...(q.actors ?? []), ...(q.actor ? [q.actor] : [])].filter((a) => a.trim() !== ''));
    if (actors.size !== 1) {
      return 'User timeline needs exactly one actor';
    }
  }
  if (q.queryType === 'lookup' && !q.lookup) {
    return 'Choose what to look up';
  }
  if (q.halfLifeHours !== undefined && !(q.halfLifeHours >= 0)) {
    return 'Half-life must be zero (default) or positive';
  }
  return '';
}

/** Investigation dashboard address (same scheme as grafana.InvestigationURL in Go). */
export function investigationURL(base: string, actor: string, from?: number, to?: number): string {
  let u = base.replace(/\/+$/, '') + '/d/leakline-investigation/investigation?var-actor=' + queryEscape(actor);
  if (from !== undefined) {
    u += '&from=' + from;
  }
  if (to !== undefined) {
    u += '&to=' + to;
  }
  return u;
}

/** Go's url.QueryEscape: like encodeURIComponent, but space is '+' and !'()* are escaped. */
export function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}
