// Starts `hylo serve` on a fixture model for the Node.js client tests, and stops it.
// Usage of a test file: node <test>.mjs <hylo binary> <server_fixture_model binary>
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// The npm clients come from deps/npm (NODE_PATH); without them the test is skipped (exit 77).
export function loadPackage(name) {
  try {
    return require(name);
  } catch (e) {
    console.error(`the ${name} npm package is missing (scripts/setup.sh installs it): ${e.message}`);
    process.exit(77);
  }
}

// `withModel: false` starts it without -m (a gateway needs --upstream or --routes in extraArgs).
export async function startServer(extraArgs = [], { withModel = true } = {}) {
  const [hylo, fixtureTool] = process.argv.slice(2);
  if (!hylo || !fixtureTool) throw new Error('usage: node test.mjs HYLO_BINARY FIXTURE_TOOL');
  const model = execFileSync(fixtureTool, ['qwen3moe-tiny'], { encoding: 'utf8' }).trim();
  const modelArgs = withModel ? ['-m', model] : [];
  const child = spawn(hylo, ['serve', ...modelArgs, '--port', '0', ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, HYLO_API_KEY: '' },
  });
  let log = '';
  let exited = null;
  child.on('exit', (code) => { exited = code; });
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`hylo serve exited with ${code}:\n${log}`)));
  });
  // Readiness: /health answers 200 once the model is loaded (bounded number of polls).
  let ready = false;
  for (let i = 0; i < 1500 && !ready && exited === null; i++) {
    try {
      ready = (await fetch(`${url}/health`)).status === 200;
    } catch {}
    if (!ready) await new Promise((r) => setTimeout(r, 20));
  }
  if (!ready) throw new Error(`hylo serve did not become ready:\n${log}`);
  return {
    url,
    log: () => log,
    stop: () =>
      new Promise((resolve) => {
        if (exited !== null) return resolve(exited);
        child.on('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}
