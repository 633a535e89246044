#!/usr/bin/env python3
"""Whole-process benchmarks of the release `recupera` binary.

Standard library only (Python 3.11). Run from anywhere:

    python3 scripts/bench.py                 # everything (~2.5 minutes after the build)
    python3 scripts/bench.py --quick         # fewer rounds, 1/10 sizes (smoke test)
    python3 scripts/bench.py --only cost,smtp --write-md

Sections (``--only``): cost, startup, concurrency, listing, purge, smtp.

Method
- Every figure compared with another is measured in the same run with the
  samples interleaved (round-robin, rotating order), and ratios are the
  median of per-round ratios, so the noise of a shared 2-core machine hits
  both sides alike.
- Wall time is measured around fork/exec/wait of the process (Python's
  ``subprocess`` plus ``os.wait4``, which also gives the child's peak RSS).
- The in-process argon2 floor comes from the ``cost`` bench binary
  (``COST_HASH_ONLY=3``: three hashes in a fresh process, timed inside it;
  the first is "cold" -- it pays the page faults of argon2's 19 MiB -- the
  other two are "warm"). One helper run is interleaved with every round of
  process runs. Targets are against the warm hash, the true floor.
- Release builds ignore RECUPERA_TEST_NOW, so the real clock runs; a
  ``reset request`` for a "known" account uses a fresh account each time
  (never throttled: the full issue path, code + mail).
- Per-run set-up (clearing the counters a wrong attempt leaves) is done with
  Python's sqlite3 between runs, outside the timed region.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "recupera"
MD = ROOT / "BENCHMARKS.md"
MD_BEGIN = "<!-- figures:begin (written by scripts/bench.py --write-md) -->"
MD_END = "<!-- figures:end -->"

PW = "correct-horse-battery-staple-42"
WRONG_PW = "correct-horse-battery-staple-43"
NEW_PW = "vaca-morada-trompeta-1987-lluvia"
UNKNOWN_NIT = "999999999"

EX_BUSY = 75

# ----------------------------------------------------------------- helpers


def median(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def quantiles(xs):
    xs = sorted(x for x in xs if x == x)
    if len(xs) < 2:
        return (median(xs), median(xs))
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return (q[0], q[2])


def paired(a, b):
    """Median of per-round ratios a[i]/b[i] and its interquartile range."""
    r = [x / y for x, y in zip(a, b) if y]
    lo, hi = quantiles(r)
    return median(r), lo, hi


class Result:
    def __init__(self, wall, rc, maxrss_kb, out, err):
        self.wall = wall
        self.rc = rc
        self.maxrss_kb = maxrss_kb
        self.out = out
        self.err = err


TIME_BIN = shutil.which("time", path="/usr/bin:/bin")


def run(argv, env, stdin_text=None, capture=False, check_rc=None, rss=False):
    """Runs one process; wall time around spawn..reap.

    With ``rss``, the process's peak RSS (KB) is taken by GNU time
    (``/usr/bin/time -f %M``) when present, else by polling VmHWM in
    /proc/PID/status. (``wait4``'s ru_maxrss is not used: with vfork the
    child's figure includes this Python process's own RSS.)
    """
    stdin = subprocess.DEVNULL
    tmp = None
    if stdin_text is not None:
        tmp = tempfile.TemporaryFile()
        tmp.write(stdin_text.encode())
        tmp.seek(0)
        stdin = tmp
    rss_file = None
    if rss and TIME_BIN:
        fd, rss_file = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        argv = [TIME_BIN, "-f", "%M", "-o", rss_file, *argv]
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=out, stderr=subprocess.PIPE)
    hwm = 0
    if rss and not TIME_BIN:
        while p.poll() is None:
            try:
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.002)
    so, se = p.communicate()
    wall = time.perf_counter() - t0
    if rss_file:
        try:
            hwm = int(Path(rss_file).read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            hwm = 0
        os.unlink(rss_file)
    if tmp:
        tmp.close()
    res = Result(wall, p.returncode, hwm, (so or b"").decode(errors="replace"),
                 (se or b"").decode(errors="replace"))
    if check_rc is not None and res.rc not in check_rc:
        raise SystemExit(f"unexpected exit {res.rc} from {' '.join(map(str, argv))}: {res.err.strip()}")
    return res


def base_env(db: Path, outbox: Path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RECUPERA_") and k not in ("NO_COLOR",)
    }
    env.update(
        RECUPERA_DB=str(db),
        RECUPERA_OUTBOX=str(outbox),
        RECUPERA_LANG="en",
        RECUPERA_AGENT="bench",
        NO_COLOR="1",
    )
    return env


def rb(*args):
    return [str(BIN), *args]


def ms(x):
    return f"{x * 1e3:.1f}"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def hw_line():
    cores = os.cpu_count()
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{cpu_model()}, {cores} cores, {mem} RAM, {platform.system()} {platform.release()}"


# ----------------------------------------------------------------- build


def build(skip: bool):
    if not skip:
        print("building: cargo build --release; cargo bench --no-run --bench cost", flush=True)
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    out = subprocess.run(
        ["cargo", "bench", "--no-run", "--bench", "cost", "--message-format=json", "--quiet"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    exe = None
    for line in out.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "cost":
            exe = m.get("executable") or exe
    if not exe or not BIN.exists():
        raise SystemExit("could not find target/release/recupera or the cost bench executable")
    return Path(exe)


def hash_floor(cost_exe: Path):
    """Timings (seconds) taken inside a fresh helper process (benches/cost.rs
    with COST_HASH_ONLY=3): cold = its first Hasher::hash, warm = the median
    of the next two, reused = argon2 into a reused buffer (compute only),
    policy1/policy2 = the typed-only password policy, first call (builds
    zxcvbn's dictionaries) and second."""
    env = dict(os.environ, COST_HASH_ONLY="3")
    out = subprocess.run([str(cost_exe)], env=env, capture_output=True, text=True, check=True).stdout
    d = json.loads(out.strip().splitlines()[-1])
    h, r, p = d["hash_ns"], d["reused_ns"], d["policy_ns"]
    return {
        "cold": h[0] / 1e9,
        "warm": median(h[1:]) / 1e9,
        "reused": median(r) / 1e9,
        "policy1": p[0] / 1e9,
        "policy2": p[1] / 1e9,
    }


# ----------------------------------------------------------------- fixtures


class Fixture:
    """One database with: a login account (real argon2 hash), a confirm
    account with a live code, `n_fresh` request accounts and `n_pool`
    accounts sharing the login hash (for concurrency)."""

    def __init__(self, root: Path, n_fresh: int, n_pool: int):
        self.dir = root
        self.db = root / "recupera.db"
        self.outbox = root / "outbox"
        self.env = base_env(self.db, self.outbox)
        run(
            rb("user", "add", "--type", "cliente", "--nit", "900102030", "--email",
               "login@example.co", "--password-stdin"),
            self.env, stdin_text=PW + "\n", check_rc={0},
        )
        run(
            rb("user", "add", "--type", "cliente", "--nit", "900102032", "--email",
               "confirm@example.co", "--no-password"),
            self.env, check_rc={0},
        )
        run(
            rb("reset", "request", "--type", "cliente", "--user", "900102032", "--email",
               "confirm@example.co"),
            self.env, check_rc={0},
        )
        self.conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        (self.pw_hash,) = self.conn.execute(
            "SELECT password_hash FROM accounts WHERE nit = '900102030'"
        ).fetchone()
        (self.confirm_id,) = self.conn.execute(
            "SELECT id FROM accounts WHERE nit = '900102032'"
        ).fetchone()
        (self.code_id,) = self.conn.execute(
            "SELECT id FROM codes WHERE account_id = ? AND state = 'pending'", (self.confirm_id,)
        ).fetchone()
        now = int(time.time())
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.executemany(
            "INSERT INTO accounts (kind, nit, email, created_at) VALUES ('cliente', ?, ?, ?)",
            ((str(700_000_000 + i), f"fresh{i}@example.co", now) for i in range(n_fresh)),
        )
        c.executemany(
            "INSERT INTO accounts (kind, nit, email, password_hash, created_at, password_changed_at) "
            "VALUES ('cliente', ?, ?, ?, ?, ?)",
            ((str(600_000_000 + i), f"pool{i}@example.co", self.pw_hash, now, now)
             for i in range(n_pool)),
        )
        c.execute("COMMIT")
        self.next_fresh = 0
        self.n_fresh = n_fresh
        self.n_pool = n_pool

    def fresh_nit(self):
        i = self.next_fresh
        self.next_fresh += 1
        if i >= self.n_fresh:
            raise SystemExit("out of fresh accounts; raise n_fresh")
        return str(700_000_000 + i), f"fresh{i}@example.co"

    def clear_login(self):
        self.conn.execute(
            "UPDATE accounts SET failed_logins = 0, login_locked_until = NULL WHERE nit = '900102030'"
        )

    def clear_confirm(self):
        now = int(time.time())
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(
            "UPDATE codes SET state = 'pending', attempts = 0, expires_at = ?1 + 43200, "
            "ends_at = ?1 + 43200 WHERE id = ?2",
            (now, self.code_id),
        )
        self.conn.execute("UPDATE accounts SET failed_confirms = 0 WHERE id = ?", (self.confirm_id,))
        self.conn.execute("COMMIT")

    def close(self):
        self.conn.close()


def schema_db(path: Path):
    """A new database with recupera's own schema (created by the binary)."""
    env = base_env(path, path.parent / "outbox")
    run(rb("codes", "list"), env, check_rc={0})
    return env


# ----------------------------------------------------------------- sections

FIG = {}  # name -> (value, unit/ratio text, target text, ok: bool|None)


def fig(name, value, shown, target="", ok=None):
    FIG[name] = (value, shown, target, ok)


def section_cost(fx: Fixture, cost_exe: Path, rounds: int):
    print(f"\n== cost: processes vs in-process argon2, {rounds} interleaved rounds ==", flush=True)
    env = fx.env
    ops = {}

    def op_hash():
        return hash_floor(cost_exe)

    def login_right():
        fx.clear_login()
        return run(rb("login", "--type", "cliente", "--user", "900102030", "--password-stdin"),
                   env, PW + "\n", check_rc={0}).wall

    def login_wrong():
        fx.clear_login()
        return run(rb("login", "--type", "cliente", "--user", "900102030", "--password-stdin"),
                   env, WRONG_PW + "\n", check_rc={1}).wall

    def login_unknown():
        return run(rb("login", "--type", "cliente", "--user", UNKNOWN_NIT, "--password-stdin"),
                   env, PW + "\n", check_rc={1}).wall

    def request_known():
        nit, email = fx.fresh_nit()
        return run(rb("reset", "request", "--type", "cliente", "--user", nit, "--email", email),
                   env, check_rc={0}).wall

    def request_unknown():
        return run(rb("reset", "request", "--type", "cliente", "--user", UNKNOWN_NIT, "--email",
                      "nadie@example.co"), env, check_rc={0}).wall

    def confirm_known():
        fx.clear_confirm()
        return run(rb("reset", "confirm", "--type", "cliente", "--user", "900102032", "--code",
                      "ZZZZZ", "--password-stdin"), env, NEW_PW + "\n", check_rc={1}).wall

    def confirm_unknown():
        return run(rb("reset", "confirm", "--type", "cliente", "--user", UNKNOWN_NIT, "--code",
                      "ZZZZZ", "--password-stdin"), env, NEW_PW + "\n", check_rc={1}).wall

    table = [
        ("login known, right pw", login_right),
        ("login known, wrong pw", login_wrong),
        ("login unknown", login_unknown),
        ("request known (fresh)", request_known),
        ("request unknown", request_unknown),
        ("confirm known, wrong code", confirm_known),
        ("confirm unknown", confirm_unknown),
    ]
    # warm-up: page cache, outbox folder
    for _, f in table:
        f()
    op_hash()
    samples = {name: [] for name, _ in table}
    hf = {k: [] for k in ("cold", "warm", "reused", "policy1", "policy2")}
    for r in range(rounds):
        order = table[r % len(table):] + table[: r % len(table)]
        # The helper runs first, a third of the way or two thirds in turn.
        slot = (r % 3) * len(order) // 3
        for i, (name, f) in enumerate(order):
            if i == slot:
                for k, v in op_hash().items():
                    hf[k].append(v)
            samples[name].append(f())
    cold, warm, reused = hf["cold"], hf["warm"], hf["reused"]
    print(f"{'operation':<40} {'median ms':>10} {'p25':>8} {'p75':>8}")
    inproc = [
        ("in-process: hash, warm (the floor)", "warm"),
        ("in-process: hash, cold (1st in process)", "cold"),
        ("in-process: hash into reused memory", "reused"),
        ("in-process: password policy, 1st call", "policy1"),
        ("in-process: password policy, 2nd call", "policy2"),
    ]
    for label, k in inproc:
        lo, hi = quantiles(hf[k])
        print(f"{label:<40} {ms(median(hf[k])):>10} {ms(lo):>8} {ms(hi):>8}")
        fig(label + " ms", median(hf[k]) * 1e3, f"{median(hf[k]) * 1e3:.1f} ms")
    for name, _ in table:
        lo, hi = quantiles(samples[name])
        print(f"{'process: ' + name:<40} {ms(median(samples[name])):>10} {ms(lo):>8} {ms(hi):>8}")
        fig(f"process {name} ms", median(samples[name]) * 1e3, f"{median(samples[name]) * 1e3:.1f} ms")

    def ratio(label, a, b, lo_t, hi_t, target):
        m, lo, hi = paired(a, b)
        info = target.startswith("(info)")
        ok = None if info else lo_t <= m <= hi_t
        mark = "" if info else ("ok" if ok else "MISSED")
        print(f"RATIO {label:<50} {m:6.3f}  [{lo:.3f}, {hi:.3f}]  target {target}  {mark}")
        fig(label, m, f"{m:.3f} [{lo:.3f}, {hi:.3f}]", target, ok)

    s = samples
    two_warm = [2 * w for w in warm]
    ratio("login process (right pw) / warm hash", s["login known, right pw"], warm, 0, 1.10, "<= 1.10")
    ratio("login process (wrong pw) / warm hash", s["login known, wrong pw"], warm, 0, 1.10, "<= 1.10")
    ratio("login process (right pw) / cold hash", s["login known, right pw"], cold, 0, 1.10, "(info) 1.10 for reference")
    ratio("login process (right pw) / hash into reused memory", s["login known, right pw"], reused, 0, 1.10, "(info) 1.10 for reference")
    ratio("request process (known) / warm hash", s["request known (fresh)"], warm, 0, 1.10, "(info) 1.10 for reference")
    ratio("confirm process / two warm hashes", s["confirm known, wrong code"], two_warm, 0, 1.10, "<= 1.10 (i.e. <= 2x1.10 hashes)")
    two_plus_policy = [2 * w + p for w, p in zip(warm, hf["policy1"])]
    ratio("confirm process / (two warm hashes + 1st policy call)", s["confirm known, wrong code"], two_plus_policy, 0, 1.10, "(info) 1.10 for reference")
    ratio("login unknown/known(right) process", s["login unknown"], s["login known, right pw"], 0.95, 1.05, "0.95-1.05")
    ratio("login unknown/known(wrong) process", s["login unknown"], s["login known, wrong pw"], 0.95, 1.05, "0.95-1.05")
    ratio("request unknown/known process", s["request unknown"], s["request known (fresh)"], 0.95, 1.05, "0.95-1.05")
    ratio("confirm unknown/known process", s["confirm unknown"], s["confirm known, wrong code"], 0.95, 1.05, "0.95-1.05")


def section_startup(fx: Fixture, rounds: int):
    print(f"\n== start-up, {rounds} interleaved rounds ==", flush=True)
    env = fx.env
    small = fx.dir / "startup"
    small.mkdir(exist_ok=True)
    env_small = schema_db(small / "small.db")
    run(rb("user", "add", "--type", "cliente", "--nit", "900102030", "--email", "a@example.co",
           "--no-password"), env_small, check_rc={0})
    table = [
        ("/bin/true (spawn floor)", lambda m=False: run(["/bin/true"], env, check_rc={0}, rss=m)),
        ("recupera --help", lambda m=False: run(rb("--help"), env, check_rc={0}, rss=m)),
        ("recupera --version", lambda m=False: run(rb("--version"), env, check_rc={0}, rss=m)),
        ("user show (small db)", lambda m=False: run(rb("user", "show", "900102030"), env_small, check_rc={0}, rss=m)),
        ("codes list (small db)", lambda m=False: run(rb("codes", "list"), env_small, check_rc={0}, rss=m)),
        ("user show (bench db)", lambda m=False: run(rb("user", "show", "900102030"), env, check_rc={0}, rss=m)),
    ]
    for _, f in table:
        f()
    samples = {n: [] for n, _ in table}
    rss = {n: [] for n, _ in table}
    for r in range(rounds):
        for i in range(len(table)):
            n, f = table[(r + i) % len(table)]
            res = f()
            samples[n].append(res.wall)
    # Peak RSS: one more run of each under GNU time (not in the timings).
    for n, f in table:
        rss[n].append(f(True).maxrss_kb)
    print(f"{'command':<30} {'median ms':>10} {'p25':>8} {'p75':>8} {'peak RSS MB':>12}")
    for n, _ in table:
        lo, hi = quantiles(samples[n])
        print(f"{n:<30} {ms(median(samples[n])):>10} {ms(lo):>8} {ms(hi):>8} {max(rss[n]) / 1024:>12.1f}")
        fig(f"startup {n} ms", median(samples[n]) * 1e3, f"{median(samples[n]) * 1e3:.1f} ms")


def section_concurrency(fx: Fixture, n_ops: int, workers: int):
    print(f"\n== concurrency: {workers} processes at a time, {n_ops} mixed operations, one db ==", flush=True)
    env = fx.env
    rng = random.Random(42)
    # Give the pool accounts live codes, so confirms hit the code path.
    now = int(time.time())
    c = fx.conn
    c.execute("BEGIN IMMEDIATE")
    ids = [r[0] for r in c.execute("SELECT id FROM accounts WHERE nit >= '600000000' AND nit < '600100000'")]
    c.executemany(
        "INSERT INTO codes (account_id, code_hash, created_at, expires_at, ends_at) VALUES (?, ?, ?, ?, ?)",
        ((i, fx.pw_hash, now, now + 43200, now + 43200) for i in ids),
    )
    c.execute("COMMIT")
    kinds = ["login"] * 30 + ["login_wrong"] * 10 + ["request"] * 25 + ["confirm"] * 25 + ["purge"] * 10
    ops = []
    for _ in range(n_ops):
        k = rng.choice(kinds)
        i = rng.randrange(fx.n_pool)
        nit = str(600_000_000 + i)
        if k == "login":
            ops.append((k, rb("login", "--type", "cliente", "--user", nit, "--password-stdin"), PW + "\n"))
        elif k == "login_wrong":
            ops.append((k, rb("login", "--type", "cliente", "--user", nit, "--password-stdin"), WRONG_PW + "\n"))
        elif k == "request":
            ops.append((k, rb("reset", "request", "--type", "cliente", "--user", nit, "--email",
                              f"pool{i}@example.co"), None))
        elif k == "confirm":
            ops.append((k, rb("reset", "confirm", "--type", "cliente", "--user", nit, "--code", "ZZZZZ",
                              "--password-stdin"), NEW_PW + "\n"))
        else:
            ops.append((k, rb("codes", "purge"), None))
    lock = threading.Lock()
    results = []
    it = iter(ops)

    def worker():
        while True:
            with lock:
                try:
                    k, argv, stdin = next(it)
                except StopIteration:
                    return
            r = run(argv, env, stdin)
            with lock:
                results.append((k, r.rc, r.err, r.wall))

    t0 = time.perf_counter()
    ths = [threading.Thread(target=worker) for _ in range(workers)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.perf_counter() - t0
    busy = [r for r in results if r[1] == EX_BUSY or re.search(r"locked|busy", r[2], re.I)]
    other = [r for r in results if r[1] not in (0, 1, EX_BUSY)]
    by_kind = {}
    for k, rc, _, w in results:
        d = by_kind.setdefault(k, {"n": 0, "rc": {}, "wall": []})
        d["n"] += 1
        d["rc"][rc] = d["rc"].get(rc, 0) + 1
        d["wall"].append(w)
    for k, d in sorted(by_kind.items()):
        print(f"  {k:<12} n={d['n']:<4} exit codes {d['rc']}  median {ms(median(d['wall']))} ms  max {ms(max(d['wall']))} ms")
    ops_s = len(results) / wall
    print(f"  {len(results)} operations in {wall:.1f} s: {ops_s:.1f} ops/s; busy/locked failures: {len(busy)}; other failures: {len(other)}")
    for r in (busy + other)[:5]:
        print(f"    e.g. {r[0]} exit {r[1]}: {r[2].strip()[:200]}")
    fig("concurrency ops/s", ops_s, f"{ops_s:.1f} ops/s ({len(results)} ops, {workers} procs, {wall:.1f} s)")
    fig("concurrency busy failures", len(busy), str(len(busy)), "0", len(busy) == 0)
    fig("concurrency other failures", len(other), str(len(other)), "0", len(other) == 0)


def fill_accounts(env, db: Path, n: int):
    conn = sqlite3.connect(db, isolation_level=None)
    now = int(time.time())
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        """WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
           INSERT INTO accounts (kind, nit, username, email, name, password_hash, created_at, password_changed_at)
           SELECT CASE WHEN i % 4 = 0 THEN 'proveedor' ELSE 'cliente' END,
                  CAST(800000000 + i AS TEXT),
                  CASE WHEN i % 4 = 0 THEN 'prov' || i END,
                  'cuenta' || i || '@empresa.example.co',
                  'Cuenta número ' || i,
                  '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g',
                  ?2, ?2
           FROM s""",
        (n, now),
    )
    conn.execute("COMMIT")
    conn.close()


def section_listing(root: Path, sizes, reps: int):
    print(f"\n== listing: user list with {sizes} accounts, {reps} interleaved reps ==", flush=True)
    envs = {}
    for n in sizes:
        d = root / f"list-{n}"
        d.mkdir(exist_ok=True)
        env = schema_db(d / "recupera.db")
        t = time.perf_counter()
        fill_accounts(env, d / "recupera.db", n)
        print(f"  inserted {n} accounts in {time.perf_counter() - t:.1f} s")
        envs[n] = env
    modes = [("--json", ["user", "list", "--json"]), ("table", ["user", "list"])]
    samples = {(n, m): [] for n in sizes for m, _ in modes}
    rss = {(n, m): [] for n in sizes for m, _ in modes}
    for n in sizes:  # warm-up
        run(rb(*modes[0][1]), envs[n], check_rc={0})
    for r in range(reps):
        order = [(n, m, a) for n in sizes for m, a in modes]
        if r % 2:
            order.reverse()
        for n, m, a in order:
            res = run(rb(*a), envs[n], check_rc={0}, rss=True)
            samples[(n, m)].append(res.wall)
            rss[(n, m)].append(res.maxrss_kb)
    print(f"  {'accounts':>9} {'mode':<7} {'wall s':>8} {'us/acct':>8} {'peak RSS MB':>12}")
    for n in sizes:
        for m, _ in modes:
            w = median(samples[(n, m)])
            print(f"  {n:>9} {m:<7} {w:>8.2f} {w / n * 1e6:>8.1f} {max(rss[(n, m)]) / 1024:>12.1f}")
            fig(f"user list {m} {n} wall s", w, f"{w:.2f} s")
            fig(f"user list {m} {n} peak RSS MB", max(rss[(n, m)]) / 1024, f"{max(rss[(n, m)]) / 1024:.1f} MB")
    if len(sizes) == 2:
        a, b = sizes
        for m, _ in modes:
            rr = max(rss[(b, m)]) / max(rss[(a, m)])
            ok = rr <= 1.25
            print(f"RATIO user list {m} peak RSS {b}/{a}: {rr:.3f}  target flat (<= 1.25)  {'ok' if ok else 'MISSED'}")
            fig(f"user list {m} RSS {b}/{a}", rr, f"{rr:.3f}", "<= 1.25 (flat)", ok)
            tr, lo, hi = paired(samples[(b, m)], samples[(a, m)])
            ok = tr <= (b / a) * 1.2
            print(f"RATIO user list {m} wall {b}/{a}: {tr:.2f}  target linear (<= {b / a * 1.2:.0f})  {'ok' if ok else 'MISSED'}")
            fig(f"user list {m} wall {b}/{a}", tr, f"{tr:.2f}", f"<= {b / a * 1.2:.0f} (linear)", ok)


PHC = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"


def build_purge_db(db: Path, n_acc: int, per: int):
    """Same layout as benches/scale.rs: per account `per` codes, the first
    half finished 2-3 days ago (used / replaced / expired), the rest live;
    one mail_queue row and one reset_requests row per code, one
    'password changed' notice per used code."""
    schema_db(db)
    now = int(time.time())
    half = per // 2
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        """WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1)
           INSERT INTO accounts (id, kind, nit, email, name, password_hash, created_at, password_changed_at)
           SELECT i, 'cliente', CAST(800000000 + i AS TEXT), 'cuenta' || i || '@empresa' || (i % 997) || '.example.co',
                  'Cuenta ' || i, ?2, ?3 - 7776000, ?3 - 7776000 FROM s""",
        (n_acc, PHC, now),
    )
    conn.execute(
        """WITH RECURSIVE s(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM s WHERE k < ?1),
           b(k, a, j) AS (SELECT k, (k - 1) / ?2 + 1, (k - 1) % ?2 FROM s),
           t(k, a, j, created) AS (
             SELECT k, a, j, CASE WHEN j < ?3 THEN ?4 - 259200 + j * 3600 ELSE ?4 - 3600 + (j - ?3) END FROM b)
           INSERT INTO codes (id, account_id, code_hash, created_at, expires_at, ends_at, attempts, state)
           SELECT k, a, ?5, created, created + 43200,
                  CASE WHEN j >= ?3 THEN created + 43200
                       WHEN j % 3 = 0 THEN created + 600
                       WHEN j % 3 = 1 THEN created + 1800
                       ELSE created + 43200 END,
                  CASE WHEN j >= ?3 THEN 0 WHEN j % 3 = 0 THEN 1 WHEN j % 3 = 1 THEN 0 ELSE 2 END,
                  CASE WHEN j >= ?3 THEN 'pending' WHEN j % 3 = 0 THEN 'used'
                       WHEN j % 3 = 1 THEN 'replaced' ELSE 'pending' END
           FROM t""",
        (n_acc * per, per, half, now, PHC),
    )
    conn.execute(
        """INSERT INTO mail_queue (account_id, code_id, kind, recipient, created_at, state, attempts, finished_at)
           SELECT c.account_id, c.id, 'reset_code', a.email, c.created_at, 'sent', 1, c.created_at + 1
           FROM codes c JOIN accounts a ON a.id = c.account_id ORDER BY c.id"""
    )
    conn.execute(
        """INSERT INTO mail_queue (account_id, code_id, kind, recipient, created_at, state, attempts, finished_at)
           SELECT c.account_id, NULL, 'password_changed', a.email, c.ends_at, 'sent', 1, c.ends_at + 1
           FROM codes c JOIN accounts a ON a.id = c.account_id WHERE c.state = 'used' ORDER BY c.id"""
    )
    conn.execute("INSERT INTO reset_requests (account_id, at) SELECT account_id, created_at FROM codes ORDER BY id")
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    (finished,) = conn.execute("SELECT COUNT(*) FROM codes WHERE ends_at <= ?", (now,)).fetchone()
    (total,) = conn.execute("SELECT COUNT(*) FROM codes").fetchone()
    conn.close()
    return total, finished


def section_purge(root: Path, millions, reps: int, scale: float):
    print(f"\n== purge as a process: {millions} million codes (x{scale}), {reps} interleaved reps ==", flush=True)
    n_acc = int(100_000 * scale)
    tmpl = {}
    for m in millions:
        d = root / f"purge-{m}M"
        d.mkdir(exist_ok=True)
        db = d / "template.db"
        t = time.perf_counter()
        total, finished = build_purge_db(db, n_acc, 10 * m)
        print(f"  built {total} codes ({finished} finished) in {time.perf_counter() - t:.1f} s, "
              f"{db.stat().st_size / 1e6:.0f} MB")
        tmpl[m] = (db, total, finished)
    res = {m: [] for m in millions}
    for r in range(reps):
        order = list(millions) if r % 2 == 0 else list(reversed(millions))
        for m in order:
            db, total, finished = tmpl[m]
            work = db.parent / "work.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(work) + suffix).unlink(missing_ok=True)
            shutil.copyfile(db, work)
            env = base_env(work, db.parent / "outbox")
            out = run(rb("codes", "purge", "--json"), env, check_rc={0}, rss=True)
            res[m].append(out)
            print(f"  rep {r} {m}M: {out.wall:.2f} s wall, peak RSS {out.maxrss_kb / 1024:.0f} MB")
    for m in millions:
        db, total, finished = tmpl[m]
        w = median([o.wall for o in res[m]])
        print(f"  {m}M codes: purge {w:.2f} s -> {w / (total / 1e6):.2f} s per million stored, "
              f"{w / (finished / 1e6):.2f} s per million purged")
        fig(f"purge process {m}M s", w, f"{w:.2f} s ({w / (total / 1e6):.2f} s/M stored, {w / (finished / 1e6):.2f} s/M purged)")
    # Purge is one write transaction: how long does it hold off a login?
    m = max(millions)
    db = tmpl[m][0]
    for timeout_ms in (10_000, 1_000):
        work = db.parent / "work.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(work) + suffix).unlink(missing_ok=True)
        shutil.copyfile(db, work)
        env = base_env(work, db.parent / "outbox")
        env["RECUPERA_BUSY_TIMEOUT_MS"] = str(timeout_ms)
        t0 = time.perf_counter()
        purge = subprocess.Popen(rb("codes", "purge"), env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        lg = run(rb("login", "--type", "cliente", "--user", UNKNOWN_NIT, "--password-stdin"),
                 env, PW + "\n")
        purge.wait()
        purge_wall = time.perf_counter() - t0
        print(f"  login started 0.3 s into a {m}M purge ({purge_wall:.2f} s), busy timeout "
              f"{timeout_ms} ms: exit {lg.rc} after {lg.wall:.2f} s")
        fig(f"login during {m}M purge, busy timeout {timeout_ms} ms",
            lg.wall, f"exit {lg.rc} after {lg.wall:.2f} s (purge {purge_wall:.2f} s)", "(info)")
    if len(millions) == 2:
        a, b = millions
        rr, lo, hi = paired([o.wall for o in res[b]], [o.wall for o in res[a]])
        ok = rr <= (b / a) * 1.1
        print(f"RATIO purge process {b}M/{a}M: {rr:.3f} [{lo:.3f}, {hi:.3f}]  target <= {b / a * 1.1:.1f} (linear)  {'ok' if ok else 'MISSED'}")
        fig(f"purge process {b}M/{a}M", rr, f"{rr:.3f}", f"<= {b / a * 1.1:.1f} (linear)", ok)


# ------------------------------------------------------------- SMTP sink


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 that accepts and discards mail.

    Like a real MTA it sends each reply (multi-line ones too) in one write
    with Nagle off. With ``quickack`` it also ACKs every segment at once
    (TCP_QUICKACK re-armed before each read), which removes the client-side
    Nagle / delayed-ACK stall, to show how much of the SMTP cost is that stall.
    """

    def __init__(self, quickack=False):
        self.count = 0
        self.quickack = quickack
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        quick = self.quickack and hasattr(socket, "TCP_QUICKACK")
        buf = b""

        def send(*lines):
            conn.sendall("".join(line + "\r\n" for line in lines).encode())

        def readline():
            nonlocal buf
            while b"\n" not in buf:
                if quick:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            return line + b"\n"

        try:
            send("220 localhost sink ESMTP")
            while True:
                line = readline()
                if line is None:
                    break
                cmd = line.decode(errors="replace").strip().upper()
                if cmd.startswith("EHLO"):
                    send("250-localhost", "250-8BITMIME", "250-SMTPUTF8", "250 SIZE 10485760")
                elif cmd.startswith("HELO"):
                    send("250 localhost")
                elif cmd.startswith("DATA"):
                    send("354 go ahead")
                    while True:
                        d = readline()
                        if d is None or d in (b".\r\n", b".\n"):
                            break
                    self.count += 1
                    send("250 OK queued")
                elif cmd.startswith("QUIT"):
                    send("221 bye")
                    break
                else:  # MAIL, RCPT, RSET, NOOP
                    send("250 OK")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


def section_smtp(fx: Fixture, rounds: int):
    print(f"\n== SMTP: reset request with the outbox vs a local SMTP sink, {rounds} interleaved rounds ==", flush=True)
    sink = SmtpSink()
    quick = SmtpSink(quickack=True)
    env_out = fx.env
    env_smtp = dict(fx.env, RECUPERA_SMTP_URL=f"smtp://127.0.0.1:{sink.port}")
    env_quick = dict(fx.env, RECUPERA_SMTP_URL=f"smtp://127.0.0.1:{quick.port}")

    def known(env):
        nit, email = fx.fresh_nit()
        return run(rb("reset", "request", "--type", "cliente", "--user", nit, "--email", email), env, check_rc={0}).wall

    def unknown(env):
        return run(rb("reset", "request", "--type", "cliente", "--user", UNKNOWN_NIT, "--email",
                      "nadie@example.co"), env, check_rc={0}).wall

    table = [
        ("known, outbox", lambda: known(env_out)),
        ("known, smtp", lambda: known(env_smtp)),
        ("known, smtp quickack", lambda: known(env_quick)),
        ("unknown, outbox", lambda: unknown(env_out)),
        ("unknown, smtp", lambda: unknown(env_smtp)),
    ]
    for _, f in table:
        f()
    before = sink.count + quick.count
    s = {n: [] for n, _ in table}
    for r in range(rounds):
        for i in range(len(table)):
            n, f = table[(r + i) % len(table)]
            s[n].append(f())
    delivered = sink.count + quick.count - before
    (queued,) = fx.conn.execute("SELECT COUNT(*) FROM mail_queue WHERE state = 'queued'").fetchone()
    sink.stop()
    quick.stop()
    for n, _ in table:
        print(f"  request {n:<16} median {ms(median(s[n]))} ms")
    print(f"  delivered to the sinks: {delivered} (expected {2 * rounds}); still queued in the db: {queued}")
    m, lo, hi = paired(s["known, smtp"], s["known, outbox"])
    print(f"RATIO request smtp/outbox (known): {m:.3f} [{lo:.3f}, {hi:.3f}]")
    fig("request smtp/outbox (known)", m, f"{m:.3f} [{lo:.3f}, {hi:.3f}]", "(info)")
    d = median(s["known, smtp"]) - median(s["known, outbox"])
    fig("request smtp minus outbox ms", d * 1e3, f"{d * 1e3:+.1f} ms")
    dq = median(s["known, smtp quickack"]) - median(s["known, outbox"])
    print(f"  smtp - outbox: {d * 1e3:+.1f} ms; with a quick-ACK server: {dq * 1e3:+.1f} ms "
          f"(the difference is lettre's Nagle / delayed-ACK stall on the final '.')")
    fig("request smtp(quickack server) minus outbox ms", dq * 1e3, f"{dq * 1e3:+.1f} ms")
    m2, lo2, hi2 = paired(s["unknown, smtp"], s["known, smtp"])
    ok = 0.95 <= m2 <= 1.05
    print(f"RATIO request unknown/known with SMTP: {m2:.3f} [{lo2:.3f}, {hi2:.3f}]  target 0.95-1.05  {'ok' if ok else 'MISSED'}")
    fig("request unknown/known with SMTP", m2, f"{m2:.3f} [{lo2:.3f}, {hi2:.3f}]", "0.95-1.05", ok)
    m3, lo3, hi3 = paired(s["unknown, smtp"], s["known, smtp quickack"])
    ok3 = 0.95 <= m3 <= 1.05
    print(f"RATIO request unknown/known with a quick-ACK SMTP server: {m3:.3f} [{lo3:.3f}, {hi3:.3f}]  "
          f"target 0.95-1.05  {'ok' if ok3 else 'MISSED'}")
    fig("request unknown/known with SMTP (quick-ACK server)", m3, f"{m3:.3f} [{lo3:.3f}, {hi3:.3f}]", "0.95-1.05", ok3)


# ----------------------------------------------------------------- report


def write_md(header: str):
    lines = [MD_BEGIN, "", header, "", "| figure | value | target | |", "|---|---|---|---|"]
    for name, (_, shown, target, ok) in FIG.items():
        mark = "" if ok is None else ("ok" if ok else "**missed**")
        lines.append(f"| {name} | {shown} | {target} | {mark} |")
    lines += ["", MD_END]
    block = "\n".join(lines)
    text = MD.read_text() if MD.exists() else ""
    if MD_BEGIN in text and MD_END in text:
        pre = text.split(MD_BEGIN)[0]
        post = text.split(MD_END, 1)[1]
        text = pre + block + post
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    MD.write_text(text)
    print(f"\nwrote the figures block of {MD}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few rounds, 1/10 sizes: a smoke test")
    ap.add_argument("--only", default="cost,startup,smtp,concurrency,listing,purge")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--rounds", type=int, default=None, help="rounds for cost/startup/smtp (default 31)")
    ap.add_argument("--write-md", action="store_true", help="rewrite the figures block of BENCHMARKS.md")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    only = set(args.only.split(","))
    rounds = args.rounds or (5 if args.quick else 31)
    cost_exe = build(args.no_build)
    started = _dt.datetime.now().astimezone()
    header = (f"Run of {started:%Y-%m-%d %H:%M %Z} on {hw_line()}; "
              f"`python3 scripts/bench.py {' '.join(sys.argv[1:])}`".rstrip())
    print(header, flush=True)
    root = Path(tempfile.mkdtemp(prefix="recupera-bench-"))
    t0 = time.perf_counter()
    try:
        fx = Fixture(root / "main", n_fresh=4 * rounds + 100, n_pool=1000) if only & {"cost", "startup", "smtp", "concurrency"} else None
        if "cost" in only:
            section_cost(fx, cost_exe, rounds)
        if "startup" in only:
            section_startup(fx, rounds)
        if "smtp" in only:
            section_smtp(fx, rounds)
        if "concurrency" in only:
            section_concurrency(fx, 200 if args.quick else 1000, 4)
        if "listing" in only:
            section_listing(root, [1_000, 10_000] if args.quick else [10_000, 100_000], 2 if args.quick else 3)
        if "purge" in only:
            section_purge(root, [1, 2], 1 if args.quick else 3, 0.1 if args.quick else 1.0)
        if fx:
            fx.close()
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    print("\n== summary ==")
    for name, (_, shown, target, ok) in FIG.items():
        mark = "" if ok is None else ("ok" if ok else "MISSED")
        print(f"  {name:<48} {shown:<40} {target:<34} {mark}")
    if args.write_md:
        write_md(header)


if __name__ == "__main__":
    main()
