import assert from 'node:assert/strict';
import { test } from 'node:test';

import { expandList, interpolateQuery, investigationURL, queryEscape, Replace, validateQuery } from './query';
import { LeaklineQuery, QUERY_TYPES, USES } from './types';

// A stand-in for Grafana's templateSrv.replace with a custom format.
const vars: Record<string, string | string[]> = { actor: 'u-1007', rules: ['crm.bulk_read_no_ticket', 'outbound.pii_external'], sev: 'high' };
const replace: Replace = (text, format) =>
  text.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a, b) => (vars[a ?? b] === undefined ? m : format(vars[a ?? b])));

test('expandList flattens multi-value variables and drops empties and duplicates', () => {
  const cases: Array<[string[] | undefined, string[] | undefined]> = [
    [undefined, undefined],
    [[], []],
    [['$rules'], ['crm.bulk_read_no_ticket', 'outbound.pii_external']],
    [['${rules}', 'crm.bulk_read_no_ticket', ' x ', ''], ['crm.bulk_read_no_ticket', 'outbound.pii_external', 'x']],
    [['$sev'], ['high']],
    [['$unknown'], ['$unknown']],
  ];
  for (const [input, want] of cases) {
    assert.deepEqual(expandList(input, replace), want, JSON.stringify(input));
  }
});

test('interpolateQuery resolves actor and lists, keeps the rest', () => {
  const q: LeaklineQuery = { refId: 'A', queryType: 'findings', actor: '$actor', rules: ['$rules'], limit: 5, stream: true };
  assert.deepEqual(interpolateQuery(q, replace), {
    refId: 'A',
    queryType: 'findings',
    actor: 'u-1007',
    rules: ['crm.bulk_read_no_ticket', 'outbound.pii_external'],
    severities: undefined,
    channels: undefined,
    actors: undefined,
    limit: 5,
    stream: true,
  });
  // A multi-value variable in the single actor field takes its first value.
  assert.equal(interpolateQuery({ refId: 'A', actor: '$rules' }, replace).actor, 'crm.bulk_read_no_ticket');
});

test('validateQuery says what the backend would refuse', () => {
  const cases: Array<[LeaklineQuery, string]> = [
    [{ refId: 'A' }, 'Choose a query type'],
    [{ refId: 'A', queryType: 'findings' }, ''],
    [{ refId: 'A', queryType: 'findings', limit: 10001 }, 'Limit must be a whole number from 0 to 10000'],
    [{ refId: 'A', queryType: 'user_timeline' }, 'User timeline needs exactly one actor'],
    [{ refId: 'A', queryType: 'user_timeline', actor: 'u-1', actors: ['u-1'] }, ''],
    [{ refId: 'A', queryType: 'user_timeline', actors: ['u-1', 'u-2'] }, 'User timeline needs exactly one actor'],
    [{ refId: 'A', queryType: 'lookup' }, 'Choose what to look up'],
    [{ refId: 'A', queryType: 'top_users', halfLifeHours: -1 }, 'Half-life must be zero (default) or positive'],
  ];
  for (const [q, want] of cases) {
    assert.equal(validateQuery(q), want, JSON.stringify(q));
  }
});

test('investigationURL matches grafana.InvestigationURL (Go)', () => {
  const from = 1793613600000;
  const to = 1793700000000;
  const cases: Array<[string, string, number | undefined, number | undefined, string]> = [
    ['https://grafana.example.com', 'u-1007', from, to, 'https://grafana.example.com/d/leakline-investigation/investigation?var-actor=u-1007&from=1793613600000&to=1793700000000'],
    ['https://example.com/grafana/', 'u-1007', from, to, 'https://example.com/grafana/d/leakline-investigation/investigation?var-actor=u-1007&from=1793613600000&to=1793700000000'],
    ['http://g:3000', 'a b&c=d/é', from, to, 'http://g:3000/d/leakline-investigation/investigation?var-actor=a+b%26c%3Dd%2F%C3%A9&from=1793613600000&to=1793700000000'],
    ['http://g', 'u-1', undefined, undefined, 'http://g/d/leakline-investigation/investigation?var-actor=u-1'],
  ];
  for (const [base, actor, f, t, want] of cases) {
    assert.equal(investigationURL(base, actor, f, t), want);
  }
  assert.equal(queryEscape("it's (a)*!"), 'it%27s+%28a%29%2A%21');
});

test('every query type has editor settings', () => {
  for (const t of QUERY_TYPES) {
    assert.ok(USES[t.value], t.value);
  }
  assert.equal(QUERY_TYPES.length, 8);
});
