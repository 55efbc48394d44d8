// Loads the built dist/module.js the way Grafana does (an AMD define with
// Grafana's shared modules): real React and @grafana/data, stand-ins for
// @grafana/runtime and @grafana/ui. Checks the plugin it exports.
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
const component = (name) => Object.assign(() => null, { displayName: name });
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
