// hylo serve against the `ollama` npm package: chat and generate (whole and streamed), tags,
// show (model_info from the GGUF), ps (context_length), version, tool calls, num_ctx overflow.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { loadPackage, startServer } from './harness.mjs';

const { Ollama } = loadPackage('ollama');

let server;
let ollama;
before(async () => {
  server = await startServer(['--parallel', '2', '-c', '512', '--test-hooks']);
  ollama = new Ollama({ host: server.url });
});
after(async () => {
  assert.equal(await server.stop(), 0, server.log());
});

const messages = [{ role: 'user', content: 'Hello from the Ollama client' }];
const options = { num_predict: 7, temperature: 0 };

test('chat, whole and streamed', async () => {
  const whole = await ollama.chat({ model: 'qwen3:tiny', messages, options });
  assert.equal(whole.message.role, 'assistant');
  assert.equal(typeof whole.message.content, 'string');
  assert.equal(whole.done, true);
  assert.equal(whole.done_reason, 'length');
  assert.equal(whole.eval_count, 7);
  assert.ok(whole.prompt_eval_count > 0);

  let text = '';
  let last = null;
  for await (const part of await ollama.chat({ model: 'qwen3:tiny', messages, options, stream: true })) {
    text += part.message.content;
    last = part;
  }
  assert.equal(text, whole.message.content);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 7);
});

test('generate, whole and streamed', async () => {
  const whole = await ollama.generate({ model: 'qwen3:tiny', prompt: 'Why is the sky blue?', options });
  assert.equal(typeof whole.response, 'string');
  assert.equal(whole.done_reason, 'length');
  assert.ok(Array.isArray(whole.context) && whole.context.length > 7);
  let text = '';
  let done = false;
  for await (const part of await ollama.generate({ model: 'qwen3:tiny', prompt: 'Why is the sky blue?', options, stream: true })) {
    text += part.response;
    done = part.done;
  }
  assert.equal(text, whole.response);
  assert.equal(done, true);
});

test('tags, show, ps, version', async () => {
  const tags = await ollama.list();
  assert.equal(tags.models.length, 1);
  assert.equal(tags.models[0].details.family, 'qwen3moe');
  assert.equal(tags.models[0].details.format, 'gguf');

  const show = await ollama.show({ model: tags.models[0].name });
  assert.equal(show.model_info['general.architecture'], 'qwen3moe');
  assert.equal(show.model_info['qwen3moe.context_length'], 262144);
  assert.equal(show.model_info['qwen3moe.embedding_length'], 128);
  assert.equal(show.model_info['qwen3moe.block_count'], 4);
  assert.match(show.template, /im_start/);
  assert.match(show.parameters, /num_ctx 512/);

  const ps = await ollama.ps();
  assert.equal(ps.models.length, 1);
  assert.equal(ps.models[0].context_length, 512);

  const version = await ollama.version();
  assert.equal(typeof version.version, 'string');
});

test('tool calls come back with object arguments', async () => {
  const r = await ollama.chat({
    model: 'qwen3:tiny',
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    test_forced_output: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
  });
  assert.equal(r.message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(r.message.tool_calls[0].function.arguments, { city: 'Paris' });
});

test('a prompt over num_ctx is refused with 400, never truncated', async () => {
  await assert.rejects(
    ollama.generate({ model: 'qwen3:tiny', prompt: 'a few words that do not fit', options: { num_ctx: 4 } }),
    (err) => {
      assert.equal(err.status_code, 400);
      // A string with the numbers, not "[object Object]".
      assert.equal(typeof err.error, 'string');
      assert.match(err.message, /request \(\d+ tokens\) exceeds the available context size \(4 tokens\)/);
      return true;
    },
  );
});

test('format with a JSON schema: the answer is valid against it', async () => {
  const format = {
    type: 'object',
    properties: { city: { type: 'string', maxLength: 10 }, temp: { type: 'number' }, sunny: { type: 'boolean' } },
    required: ['city', 'temp', 'sunny'],
  };
  for (const seed of [1, 2, 3]) {
    const r = await ollama.chat({ model: 'qwen3:tiny', messages, format, options: { num_predict: 60, temperature: 1, seed } });
    assert.equal(r.done_reason, 'stop');
    const v = JSON.parse(r.message.content);
    assert.equal(typeof v.city, 'string');
    assert.ok([...v.city].length <= 10);
    assert.equal(typeof v.temp, 'number');
    assert.equal(typeof v.sunny, 'boolean');
    assert.deepEqual(Object.keys(v), ['city', 'temp', 'sunny']);
  }
  await assert.rejects(
    ollama.chat({ model: 'qwen3:tiny', messages, format: { type: 'integer', minimum: 1 } }),
    (err) => err.status_code === 400 && /unsupported keyword 'minimum'/.test(err.message),
  );
});

test('keep_alive 0 unlists the model until the next request', async () => {
  const r = await ollama.generate({ model: 'qwen3:tiny', prompt: '', keep_alive: 0 });
  assert.equal(r.done_reason, 'unload');
  assert.equal((await ollama.ps()).models.length, 0);
  await ollama.generate({ model: 'qwen3:tiny', prompt: 'hi', options: { num_predict: 1 } });
  assert.equal((await ollama.ps()).models.length, 1);
});
