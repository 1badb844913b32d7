// hylo serve --models-dir against the official `openai` and `ollama` npm packages: both list the
// models, use each by name (loaded on demand), get the SDK's not-found error for an unknown name,
// and Ollama's keep_alive 0 unloads a model (polled with a deadline).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { loadPackage, startServer } from './harness.mjs';

const OpenAI = loadPackage('openai');
const { Ollama } = loadPackage('ollama');

let server;
let openai;
let ollama;
before(async () => {
  const fixtureTool = process.argv[3];
  const dir = mkdtempSync(join(tmpdir(), 'hylo-models-'));
  for (const [name, fixture] of [['moe', 'qwen3moe-tiny-q8'], ['next', 'qwen3next-tiny-q8']]) {
    const path = execFileSync(fixtureTool, [fixture], { encoding: 'utf8' }).trim();
    symlinkSync(path, join(dir, `${name}.gguf`));
  }
  server = await startServer(['--models-dir', dir, '--parallel', '2', '-c', '512'], { withModel: false });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  ollama = new Ollama({ host: server.url });
});
after(async () => {
  assert.equal(await server.stop(), 0, server.log());
});

const messages = [{ role: 'user', content: 'Hello from a client' }];

test('the OpenAI client lists and uses the models', async () => {
  const list = await openai.models.list();
  assert.deepEqual(list.data.map((m) => m.id).sort(), ['moe', 'next']);
  assert.equal(list.data[0].meta.n_ctx, 512);
  const answers = {};
  for (const model of ['moe', 'next']) {
    const r = await openai.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0 });
    assert.equal(r.model, model);
    assert.equal(r.usage.completion_tokens, 6);
    answers[model] = r.choices[0].message.content;
  }
  assert.notEqual(answers.moe, answers.next);
  await assert.rejects(
    openai.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 2 }),
    (e) => e instanceof OpenAI.NotFoundError && /moe/.test(e.message) && /next/.test(e.message));
});

test('the Ollama client lists, uses and unloads the models', async () => {
  const tags = await ollama.list();
  assert.deepEqual(tags.models.map((m) => m.name).sort(), ['moe', 'next']);
  const r = await ollama.chat({ model: 'next', messages, options: { num_predict: 5, temperature: 0 } });
  assert.equal(r.model, 'next');
  assert.equal(r.eval_count, 5);
  let ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'next' && m.context_length === 512));

  await ollama.generate({ model: 'next', prompt: '', keep_alive: 0 });
  for (let i = 0; i < 1500 && ps.models.some((m) => m.name === 'next'); i++) {
    await new Promise((res) => setTimeout(res, 20));
    ps = await ollama.ps();
  }
  assert.ok(!ps.models.some((m) => m.name === 'next'), JSON.stringify(ps));
  await assert.rejects(ollama.chat({ model: 'llama3', messages }), /not found/);
});
