// The official `openai` and `ollama` npm clients through a hylo gateway (no local model) whose
// upstream is a second `hylo serve` (the "cloud"): OpenAI requests pass through, Ollama requests
// are translated to the cloud's OpenAI API and back, streamed and whole; every answer names its
// route.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { loadPackage, startServer } from './harness.mjs';

const OpenAI = loadPackage('openai');
const { Ollama } = loadPackage('ollama');

let cloud;
let gateway;
before(async () => {
  cloud = await startServer(['--parallel', '2', '-c', '512', '--test-hooks']);
  gateway = await startServer(['--upstream', `cloud=${cloud.url}/v1,ctx=512`], { withModel: false });
});
after(async () => {
  assert.equal(await gateway.stop(), 0, gateway.log());
  assert.equal(await cloud.stop(), 0, cloud.log());
});

const messages = [{ role: 'user', content: 'Hello through the router' }];

test('openai: whole and streamed chat through the gateway, with the route named', async () => {
  const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const { data: whole, response } = await client.chat.completions
    .create({ model: 'auto', messages, max_tokens: 6, temperature: 0 })
    .withResponse();
  assert.equal(response.headers.get('x-hylo-route'), 'cloud');
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage.completion_tokens, 6);

  const stream = await client.chat.completions.create({
    model: 'auto', messages, max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length > 0) text += chunk.choices[0].delta.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(usage.completion_tokens, 6);

  const forced = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
  const call = await client.chat.completions.create({ model: 'auto', messages, tools, test_forced_output: forced });
  assert.equal(call.choices[0].finish_reason, 'tool_calls');
  assert.equal(JSON.parse(call.choices[0].message.tool_calls[0].function.arguments).city, 'Paris');
});

test('openai: a private request on a gateway is refused, explicitly', async () => {
  const client = new OpenAI({
    baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0, defaultHeaders: { 'X-Hylo-Private': '1' },
  });
  await assert.rejects(client.chat.completions.create({ model: 'auto', messages, max_tokens: 2 }), (e) => {
    assert.equal(e.status, 503);
    assert.match(e.message, /private/);
    return true;
  });
});

test('ollama: chat and generate translated to the OpenAI upstream and back', async () => {
  const ollama = new Ollama({ host: gateway.url });
  const options = { num_predict: 5, temperature: 0 };
  const whole = await ollama.chat({ model: 'auto', messages, options });
  assert.equal(whole.done, true);
  assert.equal(whole.done_reason, 'length');
  assert.equal(whole.eval_count, 5);
  assert.ok(whole.prompt_eval_count > 0);

  let text = '';
  let last = null;
  for await (const part of await ollama.chat({ model: 'auto', messages, options, stream: true })) {
    text += part.message.content;
    last = part;
  }
  assert.equal(text, whole.message.content);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 5);

  const gen = await ollama.generate({ model: 'auto', prompt: 'Why is the sky blue?', options });
  assert.equal(gen.done, true);
  assert.equal(typeof gen.response, 'string');
  assert.equal(gen.eval_count, 5);

  const tags = await ollama.list();
  assert.ok(tags.models.some((m) => m.name === 'cloud'));
});
