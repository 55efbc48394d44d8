// Builds the plugin directory Grafana loads (dist/: module.js, plugin.json)
// or, with "test", the unit tests (dist-test/). Grafana provides React and
// its own packages at run time and loads module.js as an AMD module, so
// they are externals and the CommonJS bundle is wrapped in define().
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const externals = ['react', 'react-dom', '@grafana/data', '@grafana/runtime', '@grafana/ui', '@grafana/schema', 'rxjs', 'rxjs/operators'];

if (process.argv[2] === 'test') {
  rmSync('dist-test', { recursive: true, force: true });
  const tests = readdirSync('src').filter((f) => f.endsWith('.test.ts')).map((f) => 'src/' + f);
  await build({ entryPoints: tests, outdir: 'dist-test', bundle: true, platform: 'node', format: 'esm', outExtension: { '.js': '.mjs' }, logLevel: 'warning' });
} else {
  rmSync('dist', { recursive: true, force: true });
  mkdirSync('dist');
  const out = await build({
    entryPoints: ['src/module.ts'],
    bundle: true,
    write: false,
    format: 'cjs',
    platform: 'browser',
    target: 'es2020',
    external: externals,
    minify: true,
    sourcemap: false,
    logLevel: 'warning',
  });
  const body = out.outputFiles[0].text;
  // Only the modules the bundle requires: each must be one Grafana shares.
  const used = externals.filter((e) => body.includes(`require("${e}")`));
  const deps = JSON.stringify(used);
  const args = used.map((_, i) => 'd' + i).join(',');
  // The bundle runs in its own function so its (minified) names cannot
  // clash with the wrapper's.
  const amd =
    `define(${deps},function(${args}){var __llMods={${used.map((e, i) => JSON.stringify(e) + ':d' + i).join(',')}};` +
    `var __llRequire=function(n){if(Object.prototype.hasOwnProperty.call(__llMods,n))return __llMods[n];throw new Error("leakline: unknown module "+n)};` +
    `var __llModule={exports:{}};(function(require,module,exports){\n${body}\n})(__llRequire,__llModule,__llModule.exports);return __llModule.exports;});\n`;
  writeFileSync('dist/module.js', amd);
  const plugin = JSON.parse(readFileSync('plugin.json', 'utf8'));
  writeFileSync('dist/plugin.json', JSON.stringify(plugin, null, 2) + '\n');
  copyFileSync('../../../docs/GRAFANA.md', 'dist/README.md');
  console.log(`dist/module.js ${amd.length} bytes; add the backend: go build -o dist/${plugin.executable}_linux_amd64 ./services/grafana-plugin`);
}
