#!/usr/bin/env bash
# Installs what is missing, builds, starts `hylo serve` on the built-in default model (a small
# Qwen3-Next trained on the King James Bible, shipped in data/default-model), sends it one OpenAI
# chat request and one Ollama generate request, shows the answers, stops the server, and ends with
# one `hylo run` in the terminal.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
hylo="$root/build/bin/hylo"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free port, so the demo never collides with a server already running on 8080.
"$hylo" serve --port 0 --port-file "$work/port" --parallel 2 2>"$work/serve.log" &
server_pid=$!

# A few seconds normally; up to 15 minutes on a machine under heavy load.
url=""
for ((i = 0; i < 1800; i++)); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "quickstart: hylo serve exited during start-up:" >&2
    cat "$work/serve.log" >&2
    exit 1
  fi
  if [[ -z "$url" && -s "$work/port" ]]; then url="http://127.0.0.1:$(cat "$work/port")"; fi
  if [[ -n "$url" ]] && curl -sf "$url/health" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
if [[ -z "$url" ]] || ! curl -sf "$url/health" >/dev/null 2>&1; then
  echo "quickstart: hylo serve did not become ready; its log:" >&2
  cat "$work/serve.log" >&2
  exit 1
fi
grep -E 'model|context|listening' "$work/serve.log" | sed 's/^/  serve| /' || true

show() {  # METHOD PATH BODY: prints the request as a curl line, then the pretty-printed answer
  echo
  echo "\$ curl $url$1 -d '$2'"
  curl -sS --fail-with-body --max-time 600 -H 'Content-Type: application/json' "$url$1" -d "$2" |
    /usr/bin/python3 -c 'import json, sys
d = json.load(sys.stdin)
d.pop("context", None)  # Ollama token ids: long and not for reading
print(json.dumps(d, indent=2, ensure_ascii=False))'

}
show /v1/chat/completions \
  '{"messages":[{"role":"user","content":"Who made the heaven and the earth?"}],"max_tokens":48}'
show /api/generate '{"prompt":"Why is the sky blue?","stream":false,"options":{"num_predict":32}}'

# Stop the server before the terminal run: both would hold the model's memory.
kill -TERM "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
server_pid=""

cat <<EOF

The default model is tiny (11M parameters, trained for 34 minutes on the King James Bible): it
writes Bible-style English, not answers. The requests and the server are real; -m runs a real model.
To keep a server running:  build/bin/hylo serve [-m model.gguf]   (http://127.0.0.1:8080)

Now the same model from the terminal (hylo run; hylo chat for a conversation):
EOF
"$hylo" run -n 48 --raw "And the LORD said unto Moses,"
