// Loads the built dist/module.js the way Grafana does (an AMD define with
// Grafana's shared modules): real React and @grafana/data, stand-ins for
// @grafana/runtime and @grafana/ui. Checks the plugin it exports and
// renders its config editor (react-dom/server) through the stand-ins.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
globalThis.window = globalThis;

class DataSourceWithBackend {
  constructor(settings) {
    this.instanceSettings = settings;
    this.uid = settings.uid;
  }
  getResource(path, params) {
    return Promise.resolve({ path, params });
  }
  postResource(path, data) {
    return Promise.resolve({ path, data });
  }
}
const replaced = [];
const runtime = {
  DataSourceWithBackend,
  getTemplateSrv: () => ({
    replace: (text, _scoped, format) => {
      replaced.push(text);
      return text.replace('$actor', format('u-1007')).replace('$rules', format(['r1', 'r2']));
    },
  }),
};
// Stand-in components record their props and render their children, so a
// server-side render of an editor lists every field it shows.
const rendered = [];
const component = (name) =>
  Object.assign(
    (props) => {
      rendered.push({ name, props });
      return props?.children ?? null;
    },
    { displayName: name },
  );
const ui = new Proxy({}, { get: (_, name) => component(String(name)) });

function load() {
  const shared = {
    react: require('react'),
    'react-dom': require('react-dom'),
    '@grafana/data': require('@grafana/data'),
    '@grafana/runtime': runtime,
    '@grafana/ui': ui,
  };
  let exported;
  const define = (deps, factory) => {
    exported = factory(...deps.map((d) => {
      assert.ok(d in shared, `module.js needs ${d}, which the test does not provide`);
      return shared[d];
    }));
  };
  new Function('define', readFileSync(new URL('../dist/module.js', import.meta.url), 'utf8'))(define);
  return exported;
}

test('module.js exports a datasource plugin with both editors', async () => {
  const { plugin } = load();
  assert.ok(plugin, 'no plugin export');
  assert.equal(typeof plugin.components.QueryEditor, 'function');
  assert.equal(typeof plugin.components.ConfigEditor, 'function');
  const ds = new plugin.DataSourceClass({ uid: 'leakline', jsonData: {} });
  assert.equal(ds.variables.getType(), 'datasource');
  assert.deepEqual(ds.getDefaultQuery('dashboard'), { queryType: 'findings_over_time', groupBy: 'severity' });
  assert.equal(ds.filterQuery({ refId: 'A', queryType: 'findings', hide: true }), false);
  assert.equal(ds.filterQuery({ refId: 'A', queryType: 'findings' }), true);
  const q = ds.applyTemplateVariables({ refId: 'A', queryType: 'findings', actor: '$actor', rules: ['$rules'] }, {});
  assert.equal(q.actor, 'u-1007');
  assert.deepEqual(q.rules, ['r1', 'r2']);
  assert.deepEqual(await ds.lookup('actors', 'u-1'), { path: 'actors', params: { prefix: 'u-1' } });
  assert.deepEqual(await ds.reveal('f1', 'case 7'), { path: 'reveal', data: { finding_id: 'f1', reason: 'case 7' } });
});

// renderConfig renders the config editor for options and returns the
// stand-ins it rendered and the options each handler reports.
function renderConfig(plugin, options) {
  const { renderToStaticMarkup } = require('react-dom/server');
  const React = require('react');
  rendered.length = 0;
  const changes = [];
  renderToStaticMarkup(React.createElement(plugin.components.ConfigEditor, { options, onOptionsChange: (o) => changes.push(o) }));
  const fields = rendered.filter((r) => r.name === 'InlineField');
  const field = (label) => {
    const f = fields.find((r) => r.props.label === label);
    assert.ok(f, `no field ${label}`);
    return f;
  };
  // The control of a field is its only child element.
  const control = (label) => field(label).props.children;
  return { rendered: [...rendered], labels: fields.map((f) => f.props.label), field, control, changes };
}

test('ConfigEditor: TLS settings, certificates and key as secret fields, no way to skip verification', () => {
  const { plugin } = load();
  const KEY = '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n';

  // TLS off: only its switch; turning it on sets jsonData.secure.
  const off = renderConfig(plugin, { uid: 'leakline', jsonData: { address: 'ch:9000', tlsSkipVerify: true }, secureJsonFields: { password: true } });
  assert.ok(off.labels.includes('TLS'));
  for (const l of ['Server name', 'With CA certificate', 'CA certificate', 'Client certificate', 'Client cert', 'Client key']) {
    assert.ok(!off.labels.includes(l), `${l} shown with TLS off`);
  }
  assert.equal(off.control('Password').type.displayName, 'SecretInput');
  assert.equal(off.control('Password').props.isConfigured, true);
  assert.ok(off.rendered.some((r) => r.name === 'Alert'), 'no alert for tlsSkipVerify');
  off.control('TLS').props.onChange({ currentTarget: { checked: true } });
  assert.deepEqual(off.changes.at(-1).jsonData, { address: 'ch:9000', secure: true });

  // TLS on, CA stored, mutual TLS with nothing entered yet.
  const on = renderConfig(plugin, {
    uid: 'leakline',
    jsonData: { address: 'ch:9000', secure: true, tlsAuthWithCACert: true, tlsAuth: true },
    secureJsonFields: { password: true, tlsCACert: true },
    secureJsonData: { tlsClientKey: KEY },
  });
  for (const l of ['Server name', 'With CA certificate', 'CA certificate', 'Client certificate', 'Client cert', 'Client key']) {
    assert.ok(on.labels.includes(l), `${l} not shown with TLS on`);
  }
  assert.equal(on.field('Address').props.error, 'With TLS on, use the secure Native port (tcp_port_secure, usually 9440), not 9000');
  for (const [label, configured] of [['CA certificate', true], ['Client cert', false], ['Client key', false]]) {
    assert.equal(on.control(label).type.displayName, 'SecretTextArea', label);
    assert.equal(on.control(label).props.isConfigured, configured, label);
  }
  assert.equal(on.field('Client cert').props.error, 'Mutual TLS needs the client certificate (PEM)');
  assert.equal(on.field('Client key').props.error, undefined);
  assert.equal(on.field('CA certificate').props.error, undefined);
  // A secret entered is only ever the value of a secret field.
  for (const r of on.rendered) {
    if (!r.name.startsWith('Secret') && r.props) {
      assert.ok(!JSON.stringify(r.props.value ?? '').includes('PRIVATE KEY'), `${r.name} shows the key`);
    }
  }
  assert.ok(!on.labels.some((l) => /skip|insecure/i.test(l)), 'a field to skip verification');

  on.control('CA certificate').props.onReset();
  assert.deepEqual(on.changes.at(-1).secureJsonFields, { password: true, tlsCACert: false });
  on.control('Client cert').props.onChange({ currentTarget: { value: 'CERT' } });
  assert.deepEqual(on.changes.at(-1).secureJsonData, { tlsClientKey: KEY, tlsClientCert: 'CERT' });
  on.control('Server name').props.onChange({ target: { value: 'ch.internal' } });
  assert.equal(on.changes.at(-1).jsonData.serverName, 'ch.internal');
  on.control('Client certificate').props.onChange({ currentTarget: { checked: false } });
  assert.equal(on.changes.at(-1).jsonData.tlsAuth, false);
  on.control('TLS').props.onChange({ currentTarget: { checked: false } });
  assert.deepEqual(JSON.parse(JSON.stringify(on.changes.at(-1).jsonData)), { address: 'ch:9000', secure: false, tlsAuthWithCACert: false, tlsAuth: false });
});
