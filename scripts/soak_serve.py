#!/usr/bin/env python3
"""Soak test of `hylo serve`: N concurrent connections send chat requests (OpenAI streamed and
whole, Ollama streamed) for a fixed time and hang up at random points in a share of them. Reports
requests sent / accepted / completed / hung up / explicit errors / lost, and the server's RSS at
the start and end; exits 1 if any answer was lost or garbled or RSS grew past --rss-bound-mb.

  scripts/soak_serve.py [--hylo build/bin/hylo] [-m model.gguf] [--connections 64] [--seconds 60]

Without -m it makes a tiny random-weight model (hylo make-model --preset tiny) in a temporary
directory. Loopback only; the server is started and stopped by the script.
"""
import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = dict(sent=0, accepted=0, completed=0, hung_up=0, errors=0, lost=0)
        self.lost_examples = []

    def add(self, key, example=None):
        with self.lock:
            self.c[key] += 1
            if example and len(self.lost_examples) < 5:
                self.lost_examples.append(example)


def one_request(port, rng, counts, disconnect_share, max_tokens):
    kind = rng.choice(["openai_stream", "openai_whole", "ollama_stream"])
    prompt = "soak %d: %s" % (rng.randrange(1 << 30), " ".join(rng.choice(["alpha", "beta", "gamma"]) for _ in range(rng.randrange(1, 40))))
    n = rng.randrange(1, max_tokens + 1)
    if kind == "ollama_stream":
        path, body = "/api/generate", {"prompt": prompt, "options": {"num_predict": n, "seed": 1}}
    else:
        path = "/v1/chat/completions"
        body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": n, "seed": 1,
                "stream": kind == "openai_stream"}
    hang_up_after = rng.randrange(0, 6) if rng.random() < disconnect_share else None
    counts.add("sent")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        if hang_up_after == 0:  # before the answer
            counts.add("hung_up")
            return
        resp = conn.getresponse()
        if resp.status != 200:
            resp.read()
            counts.add("errors")  # explicit: 503 queue full and the like
            return
        counts.add("accepted")
        lines = 0
        text = b""
        while True:
            line = resp.readline()
            if not line:
                break
            text += line
            lines += 1
            if hang_up_after is not None and lines >= hang_up_after:
                counts.add("hung_up")
                return
        if kind == "openai_whole":
            answer = json.loads(text)
            ok = bool(answer["choices"][0]["finish_reason"])
        elif kind == "openai_stream":
            events = [l[6:] for l in text.decode().split("\n") if l.startswith("data: ")]
            if any('"error"' in e for e in events):
                counts.add("errors")
                return
            ok = events[-1] == "[DONE]" and all(json.loads(e) for e in events[:-1])
        else:
            records = [json.loads(l) for l in text.decode().split("\n") if l.strip()]
            if any("error" in r for r in records):
                counts.add("errors")
                return
            ok = records[-1].get("done") is True
        counts.add("completed" if ok else "lost", None if ok else f"{kind}: {text[-200:]!r}")
    except (OSError, http.client.HTTPException, ValueError, KeyError, IndexError) as e:
        counts.add("lost", f"{kind}: {type(e).__name__}: {e}")
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hylo", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "hylo"))
    ap.add_argument("-m", "--model")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--disconnect", type=float, default=0.3, help="share of requests hung up at a random point")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--rss-bound-mb", type=float, default=64, help="largest RSS growth accepted (MiB)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="hylo-soak-")
    model = a.model
    if not model:
        model = os.path.join(tmp.name, "tiny.gguf")
        subprocess.run([a.hylo, "make-model", "--arch", "qwen3moe", "--preset", "tiny", "-o", model], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = os.path.join(tmp.name, "port")
    log = open(os.path.join(tmp.name, "serve.log"), "w+")
    server = subprocess.Popen([a.hylo, "serve", "-m", model, "--port", "0", "--port-file", port_file, "--parallel",
                               str(a.parallel), "--max-queue", "64", "-c", "1024"], stderr=log)
    try:
        port = None
        for _ in range(3000):
            if server.poll() is not None:
                sys.exit("hylo serve exited: see " + log.name)
            if os.path.exists(port_file) and open(port_file).read().strip():
                port = int(open(port_file).read())
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/health")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.02)
        counts = Counts()
        one_request(port, random.Random(0), counts, 0, 4)  # warm-up: first-use allocations
        rss_start = rss_mib(server.pid)
        counts = Counts()
        end = time.monotonic() + a.seconds

        def worker(i):
            rng = random.Random(a.seed * 1000 + i)
            while time.monotonic() < end:
                one_request(port, rng, counts, a.disconnect, a.max_tokens)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The server finishes what the hung-up requests left, then should be idle.
        for _ in range(1000):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/metrics")
            m = c.getresponse().read().decode()
            if re.search(r"^hylo_requests_running 0$", m, re.M) and re.search(r"^hylo_requests_waiting 0$", m, re.M):
                break
            time.sleep(0.05)
        rss_end = rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        code = server.wait(timeout=60)
        stop_s = time.monotonic() - t0

    c = counts.c
    print(f"connections {a.connections}, {a.seconds:.0f} s, hang-ups {a.disconnect:.0%}, --parallel {a.parallel}")
    print("sent {sent}  accepted {accepted}  completed {completed}  hung_up {hung_up}  errors {errors}  lost {lost}"
          .format(**c))
    print(f"RSS start {rss_start:.1f} MiB  end {rss_end:.1f} MiB  (growth {rss_end - rss_start:+.1f} MiB, "
          f"bound {a.rss_bound_mb:.0f})")
    print(f"SIGTERM: exit {code} after {stop_s:.2f} s")
    for ex in counts.lost_examples:
        print("lost:", ex)
    ok = c["lost"] == 0 and rss_end - rss_start <= a.rss_bound_mb and code == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
