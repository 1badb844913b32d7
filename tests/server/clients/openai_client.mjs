// hylo serve against the official `openai` npm package (6.x): chat (whole, streamed, with
// include_usage), a tool-call round trip, completions, the model list, and a context overflow
// surfacing as the SDK's BadRequestError with the token counts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { loadPackage, startServer } from './harness.mjs';

const OpenAI = loadPackage('openai');

let server;
let client;
before(async () => {
  server = await startServer(['--parallel', '2', '-c', '512', '--test-hooks']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0, server.log());
});

const messages = [{ role: 'user', content: 'Hello from the OpenAI SDK' }];
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const forcedCall = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

test('models list reports the loaded model with its contexts', async () => {
  const list = await client.models.list();
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].id, 'qwen3moe-tiny.gguf');
  assert.equal(list.data[0].meta.n_ctx, 512);
  assert.equal(list.data[0].meta.n_ctx_train, 262144);
});

test('chat, whole and streamed with include_usage, give the same greedy answer', async () => {
  const whole = await client.chat.completions.create({ model: 'any', messages, max_tokens: 8, temperature: 0 });
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.choices[0].message.role, 'assistant');
  assert.equal(typeof whole.choices[0].message.content, 'string');
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage.completion_tokens, 8);

  const stream = await client.chat.completions.create({
    model: 'any', messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 8);
  assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);
});

test('a tool call round trip', async () => {
  // The model's output is forced to a call (--test-hooks); it goes through the engine and parser.
  const first = await client.chat.completions.create({
    model: 'any', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool],
    test_forced_output: forcedCall,
  });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });

  // Streamed, the call arrives as OpenAI streams one: id and name first, then argument pieces.
  const stream = await client.chat.completions.create({
    model: 'any', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool], stream: true,
    test_forced_output: forcedCall,
  });
  const deltas = [];
  for await (const chunk of stream) for (const c of chunk.choices) deltas.push(...(c.delta.tool_calls ?? []));
  // The arguments stream a token at a time: more than one piece.
  assert.ok(deltas.length >= 3, JSON.stringify(deltas));
  assert.equal(deltas[0].index, 0);
  assert.match(deltas[0].id, /\S/);
  assert.equal(deltas[0].function.name, 'get_weather');
  assert.equal(deltas[0].function.arguments, '');
  for (const d of deltas.slice(1)) {
    assert.equal(d.index, 0);
    assert.equal(d.id, undefined);
    assert.equal(d.function.name, undefined);
  }
  assert.equal(deltas.map((d) => d.function.arguments).join(''), call.function.arguments);

  // The SDK's own accumulating stream helper puts the pieces together.
  const runner = client.chat.completions.stream({
    model: 'any', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool],
    test_forced_output: forcedCall,
  });
  let pieces = 0;
  runner.on('tool_calls.function.arguments.delta', () => ++pieces);
  const final = await runner.finalChatCompletion();
  assert.ok(pieces >= 2, `${pieces} argument deltas`);
  assert.equal(final.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.equal(final.choices[0].message.tool_calls[0].function.arguments, call.function.arguments);
  assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });

  // The call and its result go back to the model; the prompt holds both.
  const history = [
    { role: 'user', content: 'Weather in Paris?' },
    choice.message,
    { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21, "sky": "clear"}' },
  ];
  const second = await client.chat.completions.create({ model: 'any', messages: history, tools: [weatherTool], max_tokens: 4 });
  assert.equal(second.choices[0].message.role, 'assistant');
  const rendered = await (await fetch(`${server.url}/apply-template`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: history, tools: [weatherTool] }),
  })).json();
  // The arguments come back as the model wrote them, so the call renders as it was generated.
  assert.ok(rendered.prompt.includes(`<|im_start|>assistant\n${forcedCall}<|im_end|>`), rendered.prompt);
  assert.match(rendered.prompt, /<tool_response>\n\{"temperature": 21, "sky": "clear"\}\n<\/tool_response>/);
});

test('completions, whole and streamed', async () => {
  const whole = await client.completions.create({ model: 'any', prompt: 'Once upon a time', max_tokens: 6, temperature: 0 });
  assert.equal(whole.object, 'text_completion');
  assert.equal(whole.choices[0].finish_reason, 'length');
  assert.equal(whole.usage.completion_tokens, 6);
  const stream = await client.completions.create({ model: 'any', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, whole.choices[0].text);
});

test('JSON mode answers parse', async () => {
  const r = await client.chat.completions.create({
    model: 'any', messages, max_tokens: 20, temperature: 1, seed: 4, response_format: { type: 'json_object' },
  });
  assert.equal(typeof JSON.parse(r.choices[0].message.content), 'object');
});

test('a prompt over the context is a BadRequestError with the token counts', async () => {
  const long = 'hello '.repeat(700);
  await assert.rejects(
    client.chat.completions.create({ model: 'any', messages: [{ role: 'user', content: long }] }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `${err}`);
      assert.equal(err.status, 400);
      assert.equal(err.error.type, 'exceed_context_size_error');
      assert.equal(err.error.n_ctx, 512);
      assert.ok(err.error.n_prompt_tokens > 512);
      assert.match(err.message, /exceeds the available context size \(512 tokens\)/);
      return true;
    },
  );
});

test('bad parameters are a BadRequestError naming the field', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'any', messages, temperature: 5 }),
    (err) => err instanceof OpenAI.BadRequestError && /temperature must be between 0 and 2/.test(err.message),
  );
});

const personSchema = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer' }, tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 } },
  required: ['age', 'name'],
  additionalProperties: false,
};
function checkPerson(text) {
  const v = JSON.parse(text);
  assert.deepEqual(Object.keys(v).filter((k) => !['name', 'age', 'tags'].includes(k)), [], text);
  assert.equal(typeof v.name, 'string', text);
  assert.ok([...v.name].length <= 12, text);
  assert.ok(Number.isInteger(v.age), text);
  if (v.tags !== undefined) assert.ok(Array.isArray(v.tags) && v.tags.length <= 2 && v.tags.every((t) => t === 'a' || t === 'b'), text);
}

test('response_format json_schema: every choice is valid against the schema', async () => {
  const r = await client.chat.completions.create({
    model: 'any', messages, max_tokens: 60, temperature: 1, seed: 11, n: 4,
    response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: personSchema } },
  });
  assert.equal(r.choices.length, 4);
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'stop');
    checkPerson(c.message.content);
  }
  const stream = await client.chat.completions.create({
    model: 'any', messages, max_tokens: 60, temperature: 1, seed: 12, stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema: personSchema } },
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  checkPerson(text);
});

test('tool_choice required: arguments follow the parameters schema', async () => {
  const tool = {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['C', 'F'] } }, required: ['city', 'unit'] },
    },
  };
  const r = await client.chat.completions.create({
    model: 'any', messages: [{ role: 'user', content: 'Weather?' }], tools: [tool], tool_choice: 'required',
    max_tokens: 60, temperature: 1, seed: 3,
  });
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.equal(typeof args.city, 'string');
  assert.ok(args.unit === 'C' || args.unit === 'F', call.function.arguments);
});

test('structured output errors are BadRequestErrors naming the problem', async () => {
  const bad = [
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x' } } }, /response_format.json_schema.schema is required/],
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } } } }, /unsupported keyword 'pattern'/],
    [{ tool_choice: 'required' }, /tool_choice is "required" but the request has no tools/],
  ];
  for (const [extra, re] of bad) {
    await assert.rejects(
      client.chat.completions.create({ model: 'any', messages, max_tokens: 4, ...extra }),
      (err) => err instanceof OpenAI.BadRequestError && re.test(err.message),
    );
  }
});

test('llama-server fields: grammar, json_schema, n_predict', async () => {
  const post = async (body) => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt: 'Say yes', ...body }),
    });
    return [res.status, await res.json()];
  };
  let [status, r] = await post({ grammar: 'root ::= ("yes" | "no") "!"{1,3}', max_tokens: 10, temperature: 1, seed: 5 });
  assert.equal(status, 200);
  assert.match(r.choices[0].text, /^(yes|no)!{1,3}$/);
  assert.equal(r.choices[0].finish_reason, 'stop');
  [status, r] = await post({ json_schema: { type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 2 }, max_tokens: 30, temperature: 1 });
  assert.equal(status, 200);
  const arr = JSON.parse(r.choices[0].text);
  assert.ok(Array.isArray(arr) && arr.length >= 1 && arr.length <= 2 && arr.every((b) => typeof b === 'boolean'), r.choices[0].text);
  [status, r] = await post({ n_predict: 3, temperature: 0 });
  assert.equal(status, 200);
  assert.equal(r.usage.completion_tokens, 3);
  assert.equal(r.choices[0].finish_reason, 'length');
  [status, r] = await post({ grammar: 'root ::= "a" (' });
  assert.equal(status, 400);
  assert.match(r.error.message, /grammar: 1:15: expected '\)'/);
});

test('prompt scoring: max_tokens 0 with echo and logprobs', async () => {
  const r = await client.completions.create({ model: 'any', prompt: 'The sky is blue', max_tokens: 0, echo: true, logprobs: 1 });
  const lp = r.choices[0].logprobs;
  assert.equal(r.choices[0].text, 'The sky is blue');
  assert.equal(lp.tokens.join(''), 'The sky is blue');
  assert.equal(lp.token_logprobs[0], null);
  assert.ok(lp.token_logprobs.slice(1).every((x) => typeof x === 'number' && x <= 0));
  assert.equal(r.usage.completion_tokens, 0);
});

test('a final assistant message is continued', async () => {
  const rendered = await (await fetch(`${server.url}/apply-template`, {
    method: 'POST',
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello, I am' }] }),
  })).json();
  assert.match(rendered.prompt, /<\|im_start\|>assistant\n(<think>\n\n<\/think>\n\n)?Hello, I am$/);
});
