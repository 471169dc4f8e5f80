#!/usr/bin/env python3
"""The kill campaign (issue 20), driven by bench/chaos.sh.

One daemon on the release build runs a repository with a Deployment (web,
busybox httpd behind a readiness probe), a StatefulSet (db, ordered start)
and a ConfigMap. Each trial picks a scenario uniformly:

  sync         commit a ConfigMap change            then SIGKILL the daemon
  rollout      commit a new web version             then SIGKILL the daemon
  scale        commit another web replica count     then SIGKILL the daemon
  statefulset  commit another db replica count      then SIGKILL the daemon
  import       import an image through the API      then SIGKILL the daemon
  helper       commit a new web version, and SIGKILL one container's helper
               (a shim creating a container, or a reaper watching one);
               the daemon runs on

The kill comes at an instant drawn uniformly over the action's usual
length (WINDOW below: a sync takes tens of milliseconds, a rollout or an
ordered start about a second), and a killed daemon is started again. After each trial, within 30 s:
converged to git's head (status applied == HEAD, every pod of the desired
set Ready with the desired version, nothing being deleted), no duplicate
and no orphan (exactly one helper per pod, and one overlay mount, one veth
and one libcontainer container per pod),
the ledger names each source commit once, and the store opened (the daemon
answers). A trial that does not get there within 30 s is a failure, with
what was still wrong.

Usage: chaos.py BIN WORK N [SEED]; prints one line per trial and a summary;
writes WORK/chaos.json.
"""

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

BIN, WORK, TRIALS = sys.argv[1], sys.argv[2], int(sys.argv[3])
SEED = int(sys.argv[4]) if len(sys.argv) > 4 else int(time.time())
REPO = os.path.join(WORK, "repo")
DATA = os.path.join(WORK, "data")
LAYOUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "images", "busybox-1.35")
BRIDGE = "dlchaos0"
POD_CIDR = "10.246.251.0/24"
SERVICE_CIDR = "10.99.251.0/24"
CONVERGE = 30.0
SCENARIOS = ["sync", "rollout", "scale", "statefulset", "import", "helper"]
# Seconds after the action starts within which the kill lands, uniformly.
WINDOW = {"sync": 0.3, "rollout": 1.5, "scale": 1.0, "statefulset": 1.5, "import": 0.3, "helper": 1.0}


def now():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.path)


def api(method, path, body=None):
    conn = UnixHTTP(os.path.join(DATA, "driftless.sock"))
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return json.loads(data) if data else None
    finally:
        conn.close()


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], check=True, capture_output=True, text=True).stdout.strip()


def manifests(state):
    return {
        "apps/web.yaml": f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {state['web']}
  selector: {{matchLabels: {{app: web}}}}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox:1.35
        command: [sh, -c, 'mkdir -p /tmp/www && echo version {state['version']} > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www']
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
""",
        "apps/db.yaml": f"""apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  replicas: {state['db']}
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: busybox:1.35
        command: [sh, -c, 'touch /tmp/ready && exec sleep 100000']
        readinessProbe: {{exec: {{command: [test, -f, /tmp/ready]}}, periodSeconds: 1}}
""",
        "apps/settings.yaml": f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{generation: "{state['generation']}"}}
""",
    }


def commit(state, message):
    for path, text in manifests(state).items():
        full = os.path.join(REPO, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    git("add", "-A")
    git("-c", "user.name=Chaos", "-c", "user.email=chaos@example.invalid", "commit", "-q", "-m", message)
    return git("rev-parse", "HEAD")


class Daemon:
    def __init__(self):
        self.proc = None
        self.log = open(os.path.join(WORK, "daemon.log"), "ab")

    def start(self):
        args = [BIN, "up", "--repo", REPO, "--path", "apps", "--interval", "1s", "--data-dir", DATA,
                "--bridge", BRIDGE, "--pod-cidr", POD_CIDR, "--service-cidr", SERVICE_CIDR,
                "--cluster-dns", SERVICE_CIDR.replace(".0/24", ".10"), "--cgroup-root", "/driftless-chaos",
                "--node-name", "node-1", "--dns-upstream", "none", "--lb-pool", "127.0.0.201",
                "--ingress-http", "127.0.0.1:18480", "--ingress-https", "127.0.0.1:18443"]
        env = dict(os.environ, DRIFTLESS_LOG="info,libcgroups=error,libcontainer=error")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, env=env)

    def answers(self):
        try:
            api("GET", "/driftless/v1/status")
            return True
        except Exception:
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def helpers():
    """Container helpers (shims and reapers) of this data folder: pid, cmdline."""
    found = []
    needle = os.path.join(DATA, "node")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and "--log" in cmdline:
            found.append((int(pid), cmdline))
    return found


def overlay_mounts():
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if " - overlay " in l and DATA in l]


def veths():
    out = subprocess.run(["ip", "-o", "link", "show", "master", BRIDGE], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l.strip()]


def ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod.get("status", {}).get("conditions", []))


def problems(state, head):
    """What still differs from the desired state; empty when converged."""
    wrong = []
    sync = api("GET", "/driftless/v1/status")["sync"]
    applied = (sync.get("applied") or {}).get("id") or ""
    if applied != head:
        wrong.append(f"applied {applied[:7]!r}, head {head[:7]}")
    if sync.get("pending"):
        wrong.append("a ledger entry not yet in git")
    pods = api("GET", "/api/v1/namespaces/default/pods")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    going = [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp")]
    if going:
        wrong.append(f"still deleting {going}")
    web = [p for p in live if p["metadata"].get("labels", {}).get("app") == "web"]
    db = [p for p in live if p["metadata"].get("labels", {}).get("app") == "db"]
    version = f"version {state['version']} "
    web_ok = [p for p in web if ready(p) and version in p["spec"]["containers"][0]["command"][2]]
    if len(web) != state["web"] or len(web_ok) != state["web"]:
        wrong.append(f"web: {len(web_ok)} of {len(web)} ready at v{state['version']}, want {state['web']}")
    db_names = sorted(p["metadata"]["name"] for p in db if ready(p))
    if db_names != [f"db-{i}" for i in range(state["db"])] or len(db) != state["db"]:
        wrong.append(f"db: ready {db_names} of {len(db)}, want {state['db']}")
    uids = [p["metadata"]["uid"] for p in live]
    found = helpers()
    per_pod = {uid: sum(1 for _, c in found if uid in c) for uid in uids}
    if any(n != 1 for n in per_pod.values()) or len(found) != len(uids):
        wrong.append(f"helpers: {len(found)} for {len(uids)} pods ({[n for n in per_pod.values() if n != 1]})")
    if len(overlay_mounts()) != len(uids):
        wrong.append(f"overlay mounts: {len(overlay_mounts())} for {len(uids)} pods")
    if len(veths()) != len(uids):
        wrong.append(f"veths: {len(veths())} for {len(uids)} pods")
    # One tmpfs for the pods' volatile state, whatever the kills: a second
    # mounted over the first would hide the running pods' state.
    run = os.path.join(DATA, "run")
    with open("/proc/self/mountinfo") as f:
        tmpfs = [l for l in f if l.split()[4] == run]
    if len(tmpfs) != 1:
        wrong.append(f"mounts at {run}: {len(tmpfs)}, want 1")
    # libcontainer's state of each container that exists (running, or kept
    # for `logs --previous` is not kept here: deleted on exit), on the
    # node's tmpfs for volatile state.
    state = os.path.join(DATA, "run", "state")
    containers = [d for d in os.listdir(state) if os.path.isdir(os.path.join(state, d))] if os.path.isdir(state) else []
    if len(containers) != len(uids):
        strays = [c for c in containers if not any(c.startswith(u) for u in uids)]
        wrong.append(f"containers in libcontainer's state: {len(containers)} for {len(uids)} pods (not a pod's: {strays})")
    return wrong


def ledger_repeats():
    out = git("log", "--format=%(trailers:key=Source-Commit,valueonly)%x00%(trailers:key=Driftless-Store,valueonly)%x00%s", "refs/driftless/applied")
    seen, repeats = {}, []
    for record in out.split("\n"):
        parts = record.split("\x00")
        if len(parts) < 3 or not parts[0].strip():
            continue
        source, rebuilt, subject = parts[0].strip(), parts[1].strip(), parts[2]
        if source in seen and not rebuilt:
            repeats.append(subject)
        seen[source] = True
    return repeats


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def main():
    rng = random.Random(SEED)
    os.makedirs(REPO, exist_ok=True)
    git("init", "-q", "-b", "main")
    state = {"web": 3, "db": 2, "version": 1, "generation": 0}
    head = commit(state, "initial")
    subprocess.run([BIN, "image", "import", LAYOUT, "--name", "busybox", "--data-dir", DATA], check=True, capture_output=True)
    daemon = Daemon()
    daemon.start()
    deadline = now() + 60
    while now() < deadline and not (daemon.answers() and not problems(state, head)):
        time.sleep(0.2)
    if problems(state, head):
        raise SystemExit(f"the first start did not converge: {problems(state, head)}")

    results = []
    for trial in range(1, TRIALS + 1):
        scenario = rng.choice(SCENARIOS)
        delay = rng.uniform(0.0, WINDOW[scenario])
        detail = ""
        if scenario == "sync":
            state["generation"] += 1
            head = commit(state, f"trial {trial}: settings {state['generation']}")
        elif scenario in ("rollout", "helper"):
            state["version"] += 1
            head = commit(state, f"trial {trial}: web v{state['version']}")
        elif scenario == "scale":
            state["web"] = rng.choice([n for n in range(1, 6) if n != state["web"]])
            head = commit(state, f"trial {trial}: web to {state['web']}")
        elif scenario == "statefulset":
            state["db"] = rng.choice([n for n in range(1, 5) if n != state["db"]])
            head = commit(state, f"trial {trial}: db to {state['db']}")
        started = now()
        if scenario == "import":
            importer = subprocess.Popen(["python3", "-c", f"""
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect({os.path.join(DATA, 'driftless.sock')!r})
c = C('localhost', timeout=30)
try:
    c.request('POST', '/driftless/v1/images/import', body=json.dumps({{'path': {LAYOUT!r}, 'name': 'chaos{trial}'}}), headers={{'Content-Type': 'application/json'}})
    c.getresponse().read()
except Exception:
    pass
"""])
        if scenario == "helper":
            while now() < started + delay:
                time.sleep(0.01)
            found = helpers()
            if found:
                pid, cmdline = rng.choice(found)
                detail = ("shim" if "driftless-shim" in cmdline.split(" ")[0] else "reaper") + f" at {delay:.2f}s"
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    detail += " (gone)"
        else:
            while now() < started + delay:
                time.sleep(0.01)
            daemon.kill()
            daemon.start()
            detail = f"killed at {delay:.2f}s"
        restarted = now()
        wrong = ["no answer"]
        while now() < restarted + CONVERGE:
            try:
                wrong = problems(state, head) if daemon.answers() else ["no answer"]
            except Exception as error:  # the API restarting
                wrong = [str(error)]
            if not wrong:
                break
            time.sleep(0.1)
        took = now() - restarted
        if scenario == "import":
            importer.kill()
            importer.wait()
        repeats = ledger_repeats()
        if repeats:
            wrong = wrong + [f"ledger repeats {repeats}"]
        if not daemon.alive():
            wrong = wrong + ["the daemon exited"]
        ok = not wrong
        results.append({"trial": trial, "scenario": scenario, "detail": detail, "converged_s": round(took, 3), "ok": ok, "wrong": wrong})
        print(f"trial {trial:3} {scenario:12} {detail:18} {'ok' if ok else 'FAILED'} {took:6.2f}s {'; '.join(wrong)}", flush=True)
        if not ok:
            # Start the next trial from a converged state, or stop.
            deadline = now() + 60
            while now() < deadline:
                try:
                    if daemon.answers() and not problems(state, head):
                        break
                except Exception:
                    pass
                time.sleep(0.5)
            else:
                print("not converged after 60 s more: stopping", flush=True)
                break

    daemon.kill()
    times = [r["converged_s"] for r in results if r["ok"]]
    failures = [r for r in results if not r["ok"]]
    summary = {
        "seed": SEED,
        "trials": len(results),
        "failures": len(failures),
        "converge_p50_s": round(percentile(times, 50), 2),
        "converge_p99_s": round(percentile(times, 99), 2),
        "converge_max_s": round(max(times), 2) if times else None,
        "by_scenario": {s: sum(1 for r in results if r["scenario"] == s) for s in SCENARIOS},
    }
    with open(os.path.join(WORK, "chaos.json"), "w") as f:
        json.dump({"summary": summary, "trials": results}, f, indent=1)
    print(json.dumps(summary))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
