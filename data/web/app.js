// hylo chat page: conversations streamed from /v1/chat/completions, kept in localStorage.
// Model output is never parsed as HTML: the Markdown renderer below builds DOM nodes and sets
// only textContent, and links are limited to http(s). Served with a CSP that forbids inline code.
'use strict';

const $ = (id) => document.getElementById(id);

const KEYS = {
  convs: 'hylo.conversations',
  current: 'hylo.current',
  settings: 'hylo.settings',
  apiKey: 'hylo.apiKey',
};
const DEFAULT_SETTINGS = {
  model: '', system: '', temperature: '', top_p: '', top_k: '', min_p: '', max_tokens: '', thinking: 'default',
  extra: '',
};

function load(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}
// Messages carry their DOM node and redraw flag while on screen; those are not stored.
const transient = (k, v) => (k === 'node' || k === 'redrawPending' ? undefined : v);
function save(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value, transient));
  } catch (e) {
    showNotice(`Could not save in this browser's storage: ${e.message}`);
  }
}

const state = {
  convs: load(KEYS.convs, []),
  currentId: load(KEYS.current, null),
  settings: { ...DEFAULT_SETTINGS, ...load(KEYS.settings, {}) },
  apiKey: load(KEYS.apiKey, ''),
  models: [],        // /v1/models data
  running: null,     // { controller, conv, msg }
};

// ---------------------------------------------------------------------------------------------
// Small DOM helpers: every piece of text goes in through textContent.

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function showNotice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// Markdown (a safe subset): fenced code, headings, lists, quotes, tables, rules, paragraphs;
// inline code, bold, italic, strike-through, http(s) links.

const INLINE = new RegExp(
  [
    '(`+)([\\s\\S]*?[^`])\\1(?!`)',                 // 1,2 code
    '\\*\\*([^*\\n]+?)\\*\\*',                      // 3 bold
    '__([^_\\n]+?)__',                              // 4 bold
    '(?<![\\w*])\\*([^*\\s](?:[^*\\n]*[^*\\s])?)\\*(?!\\w)', // 5 italic
    '(?<!\\w)_([^_\\s](?:[^_\\n]*[^_\\s])?)_(?!\\w)',      // 6 italic
    '~~([^~\\n]+)~~',                               // 7 strike
    '\\[([^\\]\\n]+)\\]\\((https?:\\/\\/[^\\s)]+)\\)', // 8,9 link
    '(https?:\\/\\/[^\\s<>()]+[^\\s<>().,;:!?"\'])', // 10 bare URL
  ].join('|'),
  'g',
);

function link(text, url) {
  const a = el('a', null, text);
  a.href = url;  // the patterns admit only http:// and https:// URLs
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

function renderInline(text, parent) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) parent.append(text.slice(last, m.index));
    if (m[2] !== undefined) parent.append(el('code', null, m[2]));
    else if (m[3] !== undefined || m[4] !== undefined) renderInline(m[3] ?? m[4], parent.appendChild(el('strong')));
    else if (m[5] !== undefined || m[6] !== undefined) renderInline(m[5] ?? m[6], parent.appendChild(el('em')));
    else if (m[7] !== undefined) renderInline(m[7], parent.appendChild(el('del')));
    else if (m[8] !== undefined) parent.append(link(m[8], m[9]));
    else if (m[10] !== undefined) parent.append(link(m[10], m[10]));
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

function codeBlock(lang, code) {
  const box = el('div', 'code-block');
  const head = el('div', 'code-head');
  head.append(el('span', null, lang || 'text'));
  const copy = el('button', null, 'copy');
  copy.type = 'button';
  copy.addEventListener('click', () => {
    navigator.clipboard?.writeText(code).then(
      () => { copy.textContent = 'copied'; },
      () => { copy.textContent = 'copy failed'; },
    );
  });
  head.append(copy);
  const pre = el('pre');
  const c = el('code', null, code);
  if (lang) c.dataset.lang = lang;
  pre.append(c);
  box.append(head, pre);
  return box;
}

const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

function tableCells(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|')) s = s.slice(0, -1);
  return s.split('|').map((c) => c.trim());
}

function renderMarkdown(text) {
  const root = document.createDocumentFragment();
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  let para = [];
  const flush = () => {
    if (para.length === 0) return;
    const p = el('p');
    para.forEach((l, k) => {
      if (k > 0) p.append(el('br'));
      renderInline(l, p);
    });
    root.append(p);
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if ((m = line.match(/^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/))) {
      flush();
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i++;  // the closing fence (absent while a block is still streaming)
      root.append(codeBlock(m[2], body.join('\n')));
    } else if ((m = line.match(/^(#{1,6})\s+(.*)$/))) {
      flush();
      const h = el(`h${m[1].length}`);
      renderInline(m[2], h);
      root.append(h);
      i++;
    } else if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      root.append(el('hr'));
      i++;
    } else if (/^\s*>/.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*> ?/, ''));
      const q = el('blockquote');
      q.append(renderMarkdown(quoted.join('\n')));
      root.append(q);
    } else if ((m = line.match(LIST_ITEM))) {
      flush();
      const ordered = /\d/.test(m[2]);
      const list = el(ordered ? 'ol' : 'ul');
      if (ordered && parseInt(m[2], 10) !== 1) list.start = parseInt(m[2], 10);
      while (i < lines.length && (m = lines[i].match(LIST_ITEM)) && /\d/.test(m[2]) === ordered) {
        const item = el('li');
        const parts = [m[3]];
        i++;
        // Indented lines continue the item.
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !LIST_ITEM.test(lines[i])) parts.push(lines[i++].trim());
        renderInline(parts.join(' '), item);
        list.append(item);
      }
      root.append(list);
    } else if (line.includes('|') && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      flush();
      const table = el('table');
      const head = table.appendChild(el('thead')).appendChild(el('tr'));
      for (const c of tableCells(line)) renderInline(c, head.appendChild(el('th')));
      const body = table.appendChild(el('tbody'));
      i += 2;
      while (i < lines.length && lines[i].includes('|') && lines[i].trim()) {
        const tr = body.appendChild(el('tr'));
        for (const c of tableCells(lines[i++])) renderInline(c, tr.appendChild(el('td')));
      }
      root.append(table);
    } else if (!line.trim()) {
      flush();
      i++;
    } else {
      para.push(line);
      i++;
    }
  }
  flush();
  return root;
}

// ---------------------------------------------------------------------------------------------
// The API, with the key when one is set; a 401 asks for a key once and retries.

function authHeaders() {
  return state.apiKey ? { Authorization: `Bearer ${state.apiKey}` } : {};
}

let keyPrompt = null;  // one dialog at a time, shared by concurrent requests
function askForKey(reason) {
  if (keyPrompt) return keyPrompt;
  keyPrompt = new Promise((resolve) => {
    const d = $('key-dialog');
    $('key-reason').textContent = reason;
    $('key-input').value = '';
    const done = (key) => {
      $('key-ok').onclick = $('key-cancel').onclick = $('key-input').onkeydown = null;
      d.close();
      keyPrompt = null;
      resolve(key);
    };
    $('key-ok').onclick = () => done($('key-input').value.trim() || null);
    $('key-cancel').onclick = () => done(null);
    $('key-input').onkeydown = (e) => {
      if (e.key === 'Enter') done($('key-input').value.trim() || null);
    };
    d.showModal();
    $('key-input').focus();
  });
  return keyPrompt;
}

async function api(path, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, { ...init, headers: { ...(init.headers || {}), ...authHeaders() } });
    if (res.status !== 401 || attempt > 0) return res;
    let reason = 'This server needs an API key.';
    try {
      const body = await res.clone().json();
      if (body?.error?.message) reason = `The server says: ${body.error.message}.`;
    } catch {}
    const key = await askForKey(reason);
    if (!key) return res;
    state.apiKey = key;
    save(KEYS.apiKey, key);
  }
}

async function errorText(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {}
  const e = body?.error;
  if (e?.type === 'exceed_context_size_error' && e.n_prompt_tokens !== undefined) {
    return `The conversation does not fit in the context: the prompt is ${e.n_prompt_tokens} tokens, the ` +
      `context holds ${e.n_ctx}. Start a new chat, shorten the messages or the system prompt, or start the ` +
      'server with a larger -c.';
  }
  if (res.status === 401) return 'The server needs a valid API key (Settings: Forget API key, then send again).';
  const msg = typeof e === 'string' ? e : e?.message;
  return `HTTP ${res.status}: ${msg || res.statusText || 'error'}`;
}

// ---------------------------------------------------------------------------------------------
// Conversations.

function currentConv() {
  return state.convs.find((c) => c.id === state.currentId) || null;
}
function saveConvs() {
  save(KEYS.convs, state.convs);
  save(KEYS.current, state.currentId);
}
function newConv() {
  const conv = { id: `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`, title: 'New chat',
    updated: Date.now(), messages: [] };
  state.convs.unshift(conv);
  state.currentId = conv.id;
  saveConvs();
  return conv;
}

function renderConvList() {
  const ul = $('conversations');
  ul.replaceChildren();
  const sorted = [...state.convs].sort((a, b) => b.updated - a.updated);
  for (const c of sorted) {
    const li = el('li', c.id === state.currentId ? 'current' : '');
    li.dataset.id = c.id;
    const title = el('button', 'conv-title', c.title || 'New chat');
    title.type = 'button';
    title.title = c.title;
    title.addEventListener('click', () => selectConv(c.id));
    const del = el('button', 'conv-delete', '×');
    del.type = 'button';
    del.title = 'Delete this conversation';
    del.addEventListener('click', () => deleteConv(c.id));
    li.append(title, del);
    ul.append(li);
  }
}

function selectConv(id) {
  if (state.running) stopGeneration();
  state.currentId = id;
  saveConvs();
  showView('chat');
  renderConvList();
  renderMessages();
}

function deleteConv(id) {
  if (state.running?.conv.id === id) stopGeneration();
  state.convs = state.convs.filter((c) => c.id !== id);
  if (state.currentId === id) state.currentId = state.convs[0]?.id ?? null;
  saveConvs();
  renderConvList();
  renderMessages();
}

// ---------------------------------------------------------------------------------------------
// Messages.

function statsText(msg) {
  const s = msg.stats;
  if (!s) return '';
  const parts = [];
  if (s.completion_tokens !== undefined) parts.push(`${s.completion_tokens} tokens`);
  if (s.tokens_per_second) parts.push(`${s.tokens_per_second.toFixed(1)} tok/s`);
  if (s.prompt_per_second) parts.push(`prompt ${s.prompt_per_second.toFixed(0)} tok/s`);
  if (s.cached_tokens) parts.push(`${s.cached_tokens} cached`);
  if (s.n_ctx && s.prompt_tokens !== undefined) {
    const used = s.prompt_tokens + (s.completion_tokens || 0);
    const pct = (100 * used) / s.n_ctx;
    parts.push(`context ${used} / ${s.n_ctx} (${pct.toFixed(pct < 10 ? 1 : 0)}%)`);
  }
  if (s.finish_reason && s.finish_reason !== 'stop') parts.push(`finish: ${s.finish_reason}`);
  return parts.join(' · ');
}

function fillMessage(node, msg) {
  node.dataset.state = msg.state || 'done';
  node.dataset.chunks = String(msg.chunks || 0);
  const body = node.querySelector('.body');
  body.replaceChildren();
  if (msg.reasoning) {
    const d = el('details', 'reasoning');
    d.open = !!msg.reasoningOpen;
    d.addEventListener('toggle', () => { msg.reasoningOpen = d.open; });
    const words = msg.reasoning.trim().split(/\s+/).length;
    d.append(el('summary', null, msg.state === 'streaming' && !msg.content ? `Thinking… (${words} words)` :
      `Reasoning (${words} words)`));
    d.append(el('div', 'reasoning-text', msg.reasoning));
    body.append(d);
  }
  for (const call of msg.tool_calls || []) {
    const box = el('div', 'tool-call');
    box.append(el('span', 'tool-name', `→ ${call.name || '(tool)'}`));
    let args = call.arguments || '';
    try {
      args = JSON.stringify(JSON.parse(args), null, 2);
    } catch {}
    const pre = el('pre');
    pre.append(el('code', null, args));
    box.append(pre);
    body.append(box);
  }
  const content = el('div', 'content');
  if (msg.role === 'user') content.textContent = msg.content;
  else content.append(renderMarkdown(msg.content || ''));
  body.append(content);
  if (msg.error) body.append(el('div', 'error', msg.error));
  if (msg.state === 'stopped') body.append(el('div', 'stats', 'stopped'));
  const stats = statsText(msg);
  if (stats) body.append(el('div', 'stats', stats));
}

function messageNode(msg) {
  const node = el('div', `msg ${msg.role}`);
  node.append(el('div', 'role', msg.role === 'user' ? 'you' : msg.model || 'assistant'));
  node.append(el('div', 'body'));
  fillMessage(node, msg);
  return node;
}

function renderMessages() {
  const box = $('messages');
  box.replaceChildren();
  const conv = currentConv();
  if (!conv) return;
  for (const m of conv.messages) {
    const node = messageNode(m);
    m.node = node;
    box.append(node);
  }
  box.scrollTop = box.scrollHeight;
}

// Redraws a streaming message at most once per frame.
function scheduleRedraw(msg) {
  if (msg.redrawPending) return;
  msg.redrawPending = true;
  requestAnimationFrame(() => {
    msg.redrawPending = false;
    if (!msg.node) return;
    const box = $('messages');
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    fillMessage(msg.node, msg);
    if (atBottom) box.scrollTop = box.scrollHeight;
  });
}

// ---------------------------------------------------------------------------------------------
// Generation.

function number(v) {
  if (v === '' || v === undefined || v === null) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function requestBody(conv) {
  const s = state.settings;
  const messages = [];
  if (s.system.trim()) messages.push({ role: 'system', content: s.system });
  for (const m of conv.messages) {
    if (m.state === 'streaming') continue;
    if (m.role === 'assistant' && m.error && !m.content) continue;
    messages.push({ role: m.role, content: m.content || '' });
  }
  const body = { messages, stream: true, stream_options: { include_usage: true } };
  if (s.model) body.model = s.model;
  for (const k of ['temperature', 'top_p', 'top_k', 'min_p', 'max_tokens']) {
    const v = number(s[k]);
    if (v !== undefined) body[k] = v;
  }
  if (s.thinking !== 'default') body.chat_template_kwargs = { enable_thinking: s.thinking === 'on' };
  if (s.extra.trim()) Object.assign(body, JSON.parse(s.extra));
  return body;
}

function contextOf(model) {
  const m = state.models.find((x) => x.id === model) || state.models[0];
  return m?.meta?.n_ctx;
}

// One server-sent event's data (a chat.completion.chunk, an error, or [DONE]) applied to msg.
function applyChunk(msg, data) {
  if (data === '[DONE]') return;
  const chunk = JSON.parse(data);
  if (chunk.error) {
    msg.error = typeof chunk.error === 'string' ? chunk.error : chunk.error.message || JSON.stringify(chunk.error);
    return;
  }
  if (chunk.model) msg.model = chunk.model;
  for (const choice of chunk.choices || []) {
    const d = choice.delta || {};
    msg.chunks = (msg.chunks || 0) + 1;
    if (d.content) msg.content += d.content;
    const reasoning = d.reasoning_content ?? d.reasoning;
    if (reasoning) msg.reasoning += reasoning;
    for (const t of d.tool_calls || []) {
      const i = t.index ?? msg.tool_calls.length;
      const call = (msg.tool_calls[i] ??= { id: '', name: '', arguments: '' });
      if (t.id) call.id = t.id;
      if (t.function?.name) call.name += t.function.name;
      if (t.function?.arguments) call.arguments += t.function.arguments;
    }
    if (choice.finish_reason) msg.stats = { ...msg.stats, finish_reason: choice.finish_reason };
  }
  if (chunk.usage) {
    const t = chunk.timings || {};
    msg.stats = {
      ...msg.stats,
      prompt_tokens: chunk.usage.prompt_tokens,
      completion_tokens: chunk.usage.completion_tokens,
      cached_tokens: chunk.usage.prompt_tokens_details?.cached_tokens,
      tokens_per_second: t.predicted_per_second,
      prompt_per_second: t.prompt_per_second,
      n_ctx: contextOf(msg.model),
    };
  }
}

async function readStream(res, msg) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      // Comment lines (": ping", ": prefill 512/2048") keep the connection alive; only data counts.
      const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) applyChunk(msg, data);
    }
    scheduleRedraw(msg);
  }
}

function setRunning(running) {
  $('send').hidden = running;
  $('stop').hidden = !running;
}

async function send() {
  const text = $('input').value;
  if (!text.trim() || state.running) return;
  let body;
  const conv = currentConv() || newConv();
  conv.messages.push({ role: 'user', content: text });
  try {
    body = requestBody(conv);
  } catch (e) {
    conv.messages.pop();
    showNotice(`The extra request fields in Settings are not valid JSON: ${e.message}`);
    return;
  }
  showNotice('');
  $('input').value = '';
  if (conv.title === 'New chat') conv.title = text.trim().split('\n')[0].slice(0, 60);
  const msg = { role: 'assistant', content: '', reasoning: '', tool_calls: [], chunks: 0, state: 'streaming',
    model: body.model || state.models[0]?.id };
  conv.messages.push(msg);
  conv.updated = Date.now();
  saveConvs();
  renderConvList();
  renderMessages();
  const controller = new AbortController();
  state.running = { controller, conv, msg };
  setRunning(true);
  const started = performance.now();
  try {
    const res = await api('/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!res.ok) msg.error = await errorText(res);
    else await readStream(res, msg);
    msg.state = msg.error ? 'error' : 'done';
  } catch (e) {
    if (e.name === 'AbortError') msg.state = 'stopped';
    else {
      msg.error = `The connection failed: ${e.message}`;
      msg.state = 'error';
    }
  }
  // Without the server's usage (stopped early): the client's own count of the stream.
  if (!msg.stats?.tokens_per_second && msg.chunks > 1) {
    const seconds = (performance.now() - started) / 1000;
    msg.stats = { ...msg.stats, tokens_per_second: msg.chunks / seconds };
  }
  state.running = null;
  setRunning(false);
  conv.updated = Date.now();
  saveConvs();
  if (msg.node) fillMessage(msg.node, msg);
  if (state.currentId === conv.id) $('input').focus();
}

// Aborting the fetch closes the connection; the server sees the client go and cancels the request.
function stopGeneration() {
  state.running?.controller.abort();
}

// ---------------------------------------------------------------------------------------------
// Models, settings, status.

async function loadModels() {
  const picker = $('model-picker');
  try {
    const res = await api('/v1/models');
    if (!res.ok) throw new Error(await errorText(res));
    const list = await res.json();
    state.models = list.data || [];
  } catch (e) {
    // Loading (503) or unreachable: say so and ask again shortly.
    $('server-state').textContent = `cannot list models: ${e.message} (retrying)`;
    setTimeout(loadModels, 2000);
    return;
  }
  picker.replaceChildren();
  for (const m of state.models) {
    // With many models (--models-dir, --models) each says whether it is loaded: picking one that
    // is not loads it with the first message.
    const note = m.status?.value && m.status.value !== 'loaded' ? `, ${m.status.value}` : '';
    const o = el('option', null, m.meta?.n_ctx ? `${m.id} (${m.meta.n_ctx} ctx${note})` : m.id);
    o.value = m.id;
    picker.append(o);
  }
  if (state.models.some((m) => m.id === state.settings.model)) picker.value = state.settings.model;
  else state.settings.model = picker.value;
  $('server-state').textContent = `${state.models.length} model${state.models.length === 1 ? '' : 's'}`;
}

const SETTING_FIELDS = ['system', 'temperature', 'top_p', 'top_k', 'min_p', 'max_tokens', 'thinking', 'extra'];

function fillSettings() {
  for (const k of SETTING_FIELDS) $(`set-${k}`).value = state.settings[k] ?? '';
}

function saveSettings() {
  const next = { ...state.settings };
  for (const k of SETTING_FIELDS) next[k] = $(`set-${k}`).value;
  const bad = ['temperature', 'top_p', 'top_k', 'min_p', 'max_tokens'].filter(
    (k) => next[k].trim() !== '' && !Number.isFinite(Number(next[k])));
  let problem = bad.length ? `not a number: ${bad.join(', ')}` : '';
  if (!problem && next.extra.trim()) {
    try {
      const extra = JSON.parse(next.extra);
      if (typeof extra !== 'object' || Array.isArray(extra) || extra === null) problem = 'extra fields: not a JSON object';
    } catch (e) {
      problem = `extra fields: ${e.message}`;
    }
  }
  if (problem) {
    $('settings-result').textContent = `Not saved — ${problem}`;
    return;
  }
  state.settings = next;
  save(KEYS.settings, next);
  $('settings-result').textContent = 'Saved.';
}

function table(rows) {
  const t = el('table', 'status-table');
  for (const [k, v] of rows) {
    if (v === undefined || v === null || v === '') continue;
    const tr = t.appendChild(el('tr'));
    tr.append(el('td', null, k), el('td', null, v));
  }
  return t;
}

function section(title, ...children) {
  const s = el('div', 'status-section');
  s.append(el('h3', null, title), ...children);
  return s;
}

// Prometheus text: "name{labels} value" lines into name → [{labels, value}].
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/);
    if (!m) continue;
    (out[m[1]] ??= []).push({ labels: m[2] || '', value: Number(m[3]) });
  }
  return out;
}

function bytes(n) {
  if (!Number.isFinite(n)) return undefined;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

async function renderStatus() {
  const out = $('status-body');
  out.replaceChildren(el('p', 'hint', 'Loading…'));
  const get = async (path) => {
    try {
      const res = await api(path);
      return { status: res.status, text: await res.text() };
    } catch (e) {
      return { status: 0, text: e.message };
    }
  };
  const [health, models, props, metrics, doctor] =
    await Promise.all(['/health', '/v1/models', '/props', '/metrics', '/doctor'].map(get));
  const json = (r) => {
    try {
      return JSON.parse(r.text);
    } catch {
      return null;
    }
  };
  const parts = [];
  const h = json(health);
  parts.push(section('Health', table([['status', h?.status ?? `HTTP ${health.status}`]])));
  const p = json(props);
  if (props.status === 200 && p) {
    const g = p.default_generation_settings || {};
    parts.push(section('Server', table([
      ['model', p.model_alias], ['file', p.model_path], ['context per slot', g.n_ctx], ['slots', p.total_slots],
      ['build', p.build_info],
      ['default sampling', g.params ? Object.entries(g.params)
        .map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`).join(', ') : ''],
    ])));
    if (p.chat_template) {
      const d = el('details');
      d.append(el('summary', null, 'Chat template'));
      const pre = el('pre');
      pre.append(el('code', null, p.chat_template));
      d.append(pre);
      parts.push(d);
    }
  } else {
    parts.push(section('Server', el('p', 'hint', `/props: HTTP ${props.status}`)));
  }
  const list = json(models)?.data || [];
  const rows = list.map((m) => [m.id, [m.owned_by, m.meta?.n_ctx && `ctx ${m.meta.n_ctx}`,
    m.meta?.n_ctx_train && `trained ${m.meta.n_ctx_train}`].filter(Boolean).join(' · ')]);
  parts.push(section('Models and routes (/v1/models)', table(rows)));
  if (metrics.status === 200) {
    const m = parseMetrics(metrics.text);
    const v = (name) => m[name]?.[0]?.value;
    const rate = (name) => (v(name) !== undefined ? v(name).toFixed(1) : undefined);
    const ttft = m.hylo_time_to_first_token_seconds_sum && m.hylo_time_to_first_token_seconds_count ?
      v('hylo_time_to_first_token_seconds_sum') / Math.max(1, v('hylo_time_to_first_token_seconds_count')) : undefined;
    parts.push(section('Load (/metrics)', table([
      ['slots', v('hylo_slots_total')], ['requests running', v('hylo_requests_running')],
      ['requests waiting', v('hylo_requests_waiting')], ['KV cache', bytes(v('hylo_kv_cache_bytes'))],
      ['prompt tokens (total / processed)',
        v('hylo_prompt_tokens_total') !== undefined ? `${v('hylo_prompt_tokens_total')} / ${v('hylo_prompt_tokens_processed_total')}` : ''],
      ['generated tokens', v('hylo_generated_tokens_total')],
      ['prompt tok/s', rate('hylo_prompt_tokens_per_second')],
      ['generation tok/s', rate('hylo_generated_tokens_per_second')],
      ['mean time to first token', ttft !== undefined ? `${ttft.toFixed(3)} s` : ''],
      ['client disconnects', v('hylo_client_disconnects_total')],
      ['prefix cache', v('hylo_prefix_cache_budget_bytes') ? `${bytes((m.hylo_prefix_cache_bytes || [])
        .filter((x) => x.labels.includes('ram')).reduce((a, x) => a + x.value, 0))} of ` +
        `${bytes(v('hylo_prefix_cache_budget_bytes'))} in RAM, ${v('hylo_prefix_cache_checkpoints') ?? 0} checkpoints, ` +
        `${v('hylo_prefix_cache_hits_total') ?? 0} hits, ${v('hylo_prefix_cache_tokens_reused_total') ?? 0} tokens reused`
        : 'off'],
    ])));
  }
  // The doctor on this server's own set-up: verdict first, then each finding with its fix.
  const d = json(doctor);
  if (doctor.status === 200 && d?.verdict) {
    const box = el('div', 'doctor');
    box.append(el('p', 'doctor-verdict', d.verdict.headline));
    if (d.verdict.detail) box.append(el('p', 'hint', d.verdict.detail));
    const list = el('ul', 'doctor-findings');
    for (const f of d.findings || []) {
      const li = el('li', `finding ${f.severity}`);
      li.append(el('strong', null, `${f.severity} ${f.id}`), el('span', null, ` ${f.message}`));
      if (f.fix) li.append(el('div', 'hint', `fix: ${f.fix}`));
      list.append(li);
    }
    if (!list.children.length) list.append(el('li', null, 'no findings'));
    box.append(list);
    parts.push(section('Doctor (/doctor)', box));
  } else if (doctor.status !== 404) {
    parts.push(section('Doctor (/doctor)', el('p', 'hint', `/doctor: HTTP ${doctor.status}`)));
  }
  out.replaceChildren(...parts);
}

function showView(name) {
  $('chat-view').hidden = name !== 'chat';
  $('settings-view').hidden = name !== 'settings';
  $('status-view').hidden = name !== 'status';
  if (name === 'settings') {
    fillSettings();
    $('settings-result').textContent = '';
  }
  if (name === 'status') renderStatus();
}

// ---------------------------------------------------------------------------------------------

function init() {
  $('send').addEventListener('click', send);
  $('stop').addEventListener('click', stopGeneration);
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  $('new-chat').addEventListener('click', () => {
    if (state.running) stopGeneration();
    newConv();
    showView('chat');
    renderConvList();
    renderMessages();
    $('input').focus();
  });
  $('model-picker').addEventListener('change', () => {
    state.settings.model = $('model-picker').value;
    save(KEYS.settings, state.settings);
  });
  $('show-chat').addEventListener('click', () => showView('chat'));
  $('show-settings').addEventListener('click', () => showView('settings'));
  $('show-status').addEventListener('click', () => showView('status'));
  $('refresh-status').addEventListener('click', renderStatus);
  $('save-settings').addEventListener('click', saveSettings);
  $('forget-key').addEventListener('click', () => {
    state.apiKey = '';
    localStorage.removeItem(KEYS.apiKey);
    $('settings-result').textContent = 'API key forgotten.';
  });
  window.addEventListener('beforeunload', () => {
    if (state.running) state.running.msg.state = 'stopped';
    saveConvs();
  });
  // A conversation left streaming by a closed page is shown as stopped.
  for (const c of state.convs) for (const m of c.messages) if (m.state === 'streaming') m.state = 'stopped';
  if (!currentConv()) state.currentId = state.convs[0]?.id ?? null;
  renderConvList();
  renderMessages();
  loadModels();
  $('input').focus();
}

document.addEventListener('DOMContentLoaded', init);
