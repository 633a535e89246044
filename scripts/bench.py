#!/usr/bin/env python3
"""Whole-process benchmarks of the release `recupera` binary.

    cargo build --release
    python3 -m pip install pynacl          # the libsodium yardstick (P0)
    scripts/test-pg.sh python3 scripts/bench.py            # both engines
    python3 scripts/bench.py --only p0,startup             # some sections
    python3 scripts/bench.py --quick                       # smoke test

Sections (--only): p0, startup, uniform, load, import, invite, export.

Method
- Everything compared is measured in the same run, interleaved round by
  round, and ratios are medians of per-round ratios, so the noise of a
  shared 2-core machine hits both sides alike.
- Wall time around fork/exec/wait (subprocess + os.wait4, which also gives
  the child's peak RSS).
- P0: one whole `recupera login --password-stdin` process against ONE
  in-process libsodium argon2id hash (crypto_pwhash through PyNaCl's
  nacl.pwhash.argon2id.kdf, opslimit=2, memlimit=19456 KiB: argon2id v1.3,
  m=19456 KiB, t=2, p=1, recupera's parameters), alternating, 31 rounds;
  likewise a `reset confirm` with a wrong code (a refusal: one hash) and
  one with the right code (a success: two hashes; a fresh account and code
  each round, the code read from the outbox).
- BENCH_BIN=path measures another build of recupera (default: the
  release build of this checkout); BENCH_LIBSODIUM=path.so times
  crypto_pwhash in another libsodium build (scripts/libsodium-avx2.sh).
- PostgreSQL sections run when RECUPERA_TEST_PG_URL is set (scripts/test-pg.sh
  sets it); databases are made with psql.
- The release binary ignores RECUPERA_TEST_NOW: the real clock runs, so a
  "known" request uses a fresh account each time (never throttled).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# BENCH_BIN: another build to measure (an A/B against an older commit).
BIN = os.environ.get("BENCH_BIN") or str(ROOT / "target" / "release" / "recupera")
PW = "correct-horse-battery-staple-42"
NEW_PW = "vaca-morada-trompeta-1987-lluvia"

QUICK = False


def med(v):
    return statistics.median(v) if v else float("nan")


def run(args, env, stdin=None, check=True):
    """(wall seconds, exit code, peak RSS KiB) of one process."""
    t = time.perf_counter()
    p = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if stdin is not None:
        p.stdin.write(stdin.encode())
    p.stdin.close()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if check and code != 0:
        raise SystemExit(f"{args} exited {code}: {err.decode(errors='replace')}")
    return wall, code, ru.ru_maxrss


def out(args, env, stdin=None):
    return subprocess.run(args, env=env, input=stdin, capture_output=True, text=True, check=True).stdout


class Db:
    """A throwaway database of one engine, and the environment to use it."""

    def __init__(self, engine: str):
        self.engine = engine
        self.dir = tempfile.mkdtemp(prefix="recupera-bench-")
        if engine == "sqlite":
            self.url = os.path.join(self.dir, "recupera.db")
        else:
            base = os.environ["RECUPERA_TEST_PG_URL"]
            name = f"bench_{os.getpid()}_{random.randrange(10**9)}"
            subprocess.run(["psql", base, "-qc", f"CREATE DATABASE {name}"], check=True)
            self.url = base.replace("/postgres?", f"/{name}?")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "LANG": "es_CO.UTF-8",
            "RECUPERA_DB": self.url,
            "RECUPERA_OUTBOX": os.path.join(self.dir, "outbox"),
            "RECUPERA_AGENT": "bench",
        }

    def cli(self, *args, stdin=None, check=True, **extra):
        env = dict(self.env, **extra)
        return run([BIN, *args], env, stdin, check=check)

    def json(self, *args, stdin=None):
        return json.loads(out([BIN, "--json", *args], self.env, stdin))

    def last_code(self):
        box = Path(self.env["RECUPERA_OUTBOX"])
        newest = sorted(box.glob("*.eml"))[-1]
        for line in newest.read_text(errors="replace").splitlines():
            if line.startswith("C=C3=B3digo: ") or line.startswith("Código: "):
                return line.split(": ", 1)[1].strip()
        raise SystemExit(f"no code in {newest}")

    def codes_by_nit(self, want: int, timeout: float = 30.0):
        """{NIT: code} from the outbox once `want` messages carrying a code
        are there (a request's delivery runs in a detached process)."""
        box = Path(self.env["RECUPERA_OUTBOX"])
        deadline = time.monotonic() + timeout
        while True:
            codes = {}
            for f in sorted(box.glob("*.eml")):
                nit_, code = None, None
                for line in f.read_text(errors="replace").splitlines():
                    if line.startswith("NIT: ") and nit_ is None:
                        nit_ = line.split(": ", 1)[1].strip()
                    if (line.startswith("C=C3=B3digo: ") or line.startswith("Código: ")) and code is None:
                        code = line.split(": ", 1)[1].strip()
                if nit_ and code:
                    codes[nit_] = code
            if len(codes) >= want or time.monotonic() > deadline:
                return codes
            time.sleep(0.05)


def engines():
    e = ["sqlite"]
    if os.environ.get("RECUPERA_TEST_PG_URL"):
        e.append("postgres")
    return e


def nit(i: int) -> str:
    return str(800_000_000 + i * 7)


# ------------------------------------------------------------------ P0

# BENCH_LIBSODIUM=path: call crypto_pwhash in that shared libsodium (through
# ctypes) instead of PyNaCl's; scripts/libsodium-avx2.sh builds one whose
# argon2 runs its AVX2 code on a CPU with AVX-512 (BENCHMARKS.md, item 16).
SODIUM_LIB = os.environ.get("BENCH_LIBSODIUM")
_kdf = None


def _sodium_kdf():
    if SODIUM_LIB:
        import ctypes

        lib = ctypes.CDLL(SODIUM_LIB)
        if lib.sodium_init() < 0:
            raise SystemExit(f"sodium_init failed in {SODIUM_LIB}")
        f = lib.crypto_pwhash
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_ulonglong,
                      ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_int]
        alg = lib.crypto_pwhash_alg_argon2id13()

        def kdf(pw, salt):
            out = ctypes.create_string_buffer(32)
            if f(out, 32, pw, len(pw), salt, 2, 19456 * 1024, alg) != 0:
                raise SystemExit("crypto_pwhash failed")
            return out.raw

        return kdf
    try:
        import nacl.pwhash
    except ImportError:
        raise SystemExit("P0 needs PyNaCl: python3 -m pip install pynacl")
    return lambda pw, salt: nacl.pwhash.argon2id.kdf(32, pw, salt, opslimit=2, memlimit=19456 * 1024)


def sodium_hash():
    global _kdf
    if _kdf is None:
        _kdf = _sodium_kdf()
    salt = os.urandom(16)
    pw = PW.encode()
    t = time.perf_counter()
    _kdf(pw, salt)
    return time.perf_counter() - t


def section_p0(results):
    rounds = 5 if QUICK else 31
    db = Db("sqlite")
    db.cli("user", "add", "--nit", nit(0), "--email", "a@example.co", "--password-stdin", stdin=PW + "\n")
    # Accounts with a live code each, for the confirm runs: 1..rounds+1 get
    # a wrong code (the refusal every guess gets: the code's check only),
    # the next ones their right code (a success: the code's check, then the
    # new password's hash, the writes and the notice handed to delivery).
    wrong = range(1, rounds + 2)
    right = range(rounds + 2, 2 * rounds + 3)
    for i in [*wrong, *right]:
        db.cli("user", "add", "--nit", nit(i), "--email", f"c{i}@example.co", "--no-password")
        db.cli("reset", "request", "--nit", nit(i), "--email", f"c{i}@example.co", RECUPERA_REQUEST_MIN_MS="0")
    codes = db.codes_by_nit(len(wrong) + len(right))
    sodium_hash()
    db.cli("login", "--user", nit(0), "--password-stdin", stdin=PW + "\n")
    ratios = {"login": [], "confirm": [], "confirm_ok": []}
    times = {"login": [], "confirm": [], "confirm_ok": [], "sodium": []}
    for r in range(rounds):
        a = db.cli("login", "--user", nit(0), "--password-stdin", stdin=PW + "\n")[0]
        b = sodium_hash()
        c = db.cli("reset", "confirm", "--user", nit(wrong[r]), "--code", "ZZZZZ", "--password-stdin",
                   stdin=NEW_PW + "\n", check=False)[0]
        d = sodium_hash()
        ok = nit(right[r])
        e = db.cli("reset", "confirm", "--user", ok, "--code", codes[ok], "--password-stdin",
                   stdin=NEW_PW + "\n")[0]
        f = sodium_hash()
        for k, x, y in (("login", a, b), ("confirm", c, d), ("confirm_ok", e, f)):
            ratios[k].append(x / y)
            times[k].append(x)
        times["sodium"].append((b + d + f) / 3)
    results["p0"] = {
        "rounds": rounds,
        "login_ms": med(times["login"]) * 1e3,
        "confirm_ms": med(times["confirm"]) * 1e3,
        "confirm_ok_ms": med(times["confirm_ok"]) * 1e3,
        "libsodium": SODIUM_LIB or "PyNaCl",
        "libsodium_ms": med(times["sodium"]) * 1e3,
        "login_vs_libsodium": med(ratios["login"]),
        "confirm_vs_libsodium": med(ratios["confirm"]),
        "confirm_ok_vs_libsodium": med(ratios["confirm_ok"]),
    }
    p = results["p0"]
    print(f"P0: login process {p['login_ms']:.1f} ms, confirm process {p['confirm_ms']:.1f} ms (wrong code), "
          f"{p['confirm_ok_ms']:.1f} ms (right code), libsodium hash {p['libsodium_ms']:.1f} ms "
          f"({p['libsodium']}); "
          f"login/libsodium {p['login_vs_libsodium']:.3f} (target <= 0.90), "
          f"confirm/libsodium {p['confirm_vs_libsodium']:.3f} wrong code, "
          f"{p['confirm_ok_vs_libsodium']:.3f} right code (target <= 1.20)")


# ------------------------------------------------------------- start-up

def section_startup(results):
    rounds = 21 if QUICK else 201
    db = Db("sqlite")
    db.cli("user", "add", "--nit", nit(0), "--email", "a@example.co", "--no-password")
    env = db.env
    v, s, t = [], [], []
    for _ in range(rounds):
        v.append(run([BIN, "--version"], env)[0])
        t.append(run(["/bin/true"], env)[0])
        s.append(run([BIN, "user", "show", nit(0)], env)[0])
    rv = med([a / b for a, b in zip(v, t)])
    rs = med([a / b for a, b in zip(s, t)])
    results["startup"] = {"version_ms": med(v) * 1e3, "true_ms": med(t) * 1e3, "user_show_ms": med(s) * 1e3,
                          "version_vs_true": rv, "user_show_vs_true": rs}
    print(f"start-up: --version {med(v)*1e3:.2f} ms, /bin/true {med(t)*1e3:.2f} ms, user show {med(s)*1e3:.2f} ms; "
          f"version/true {rv:.2f} (target <= 2), user show/true {rs:.2f} (target <= 3)")


# ------------------------------------------------------------ uniform

def section_uniform(results):
    # 121 rounds: with argon2 at ~7 ms a process, 61 left the medians of a
    # noisy 2-vCPU machine moving by several percent from run to run.
    rounds = 5 if QUICK else 121
    for engine in engines():
        db = Db(engine)
        db.cli("user", "add", "--nit", nit(0), "--email", "a@example.co", "--password-stdin", stdin=PW + "\n")
        for i in range(1, 2 * rounds + 3):
            db.cli("user", "add", "--nit", nit(i), "--email", f"c{i}@example.co", "--no-password")
        for i in range(rounds + 2, 2 * rounds + 3):
            db.cli("reset", "request", "--nit", nit(i), "--email", f"c{i}@example.co", RECUPERA_REQUEST_MIN_MS="0")
        lr, rr, cr = [], [], []
        unknown = "899999034"

        def pair(r, known, miss):
            # Known first in even rounds, unknown first in odd ones.
            if r % 2:
                b, a = miss(), known()
            else:
                a, b = known(), miss()
            return b / a

        for r in range(rounds):
            i = rounds + 2 + r
            lr.append(pair(r, lambda: db.cli("login", "--user", nit(0), "--password-stdin", stdin=PW + "\n")[0],
                           lambda: db.cli("login", "--user", unknown, "--password-stdin", stdin=PW + "\n",
                                          check=False)[0]))
            cr.append(pair(r, lambda: db.cli("reset", "confirm", "--user", nit(i), "--code", "ZZZZZ",
                                             "--password-stdin", stdin=NEW_PW + "\n", check=False)[0],
                           lambda: db.cli("reset", "confirm", "--user", unknown, "--code", "ZZZZZ",
                                          "--password-stdin", stdin=NEW_PW + "\n", check=False)[0]))
            # A granted request hands its message to a detached delivery
            # process; the requests go last in the round, and the round
            # waits for that process, so it never runs under another
            # measurement (it made a known confirm right after it look
            # 20% slower on 2 cores).
            rr.append(pair(r, lambda: db.cli("reset", "request", "--nit", nit(r + 1), "--email",
                                             f"c{r+1}@example.co")[0],
                           lambda: db.cli("reset", "request", "--nit", unknown, "--email", "x@example.co")[0]))
            time.sleep(0.2)
        results.setdefault("uniform", {})[engine] = {"login": med(lr), "request": med(rr), "confirm": med(cr)}
        print(f"uniform timing unknown/known [{engine}]: login {med(lr):.3f}, request {med(rr):.3f}, "
              f"confirm {med(cr):.3f} (target 0.95-1.05)")


# -------------------------------------------------------------- load

def section_load(results):
    total = 200 if QUICK else 1000
    for engine in engines():
        for procs in (4, 16):
            db = Db(engine)
            n_acc = 64
            for i in range(n_acc):
                db.cli("user", "add", "--nit", nit(i), "--email", f"c{i}@example.co", "--password-stdin",
                       stdin=PW + "\n")
            ops = []
            rnd = random.Random(procs)
            for k in range(total):
                i = rnd.randrange(n_acc)
                kind = k % 5
                if kind == 0:
                    ops.append(([BIN, "login", "--user", nit(i), "--password-stdin"], PW + "\n", (0,)))
                elif kind == 1:
                    ops.append(([BIN, "reset", "request", "--nit", nit(i), "--email", f"c{i}@example.co"], None, (0,)))
                elif kind == 2:
                    ops.append(([BIN, "reset", "confirm", "--user", nit(i), "--code", "ZZZZZ", "--password-stdin"],
                                NEW_PW + "\n", (1,)))
                elif kind == 3:
                    ops.append(([BIN, "user", "show", nit(i)], None, (0,)))
                else:
                    ops.append(([BIN, "codes", "purge"], None, (0,)))
            env = dict(db.env, RECUPERA_REQUEST_MIN_MS="0")
            failures = 0
            t = time.perf_counter()
            running = []
            queue = list(ops)
            while queue or running:
                while queue and len(running) < procs:
                    args, stdin, ok = queue.pop()
                    p = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                    if stdin:
                        p.stdin.write(stdin.encode())
                    p.stdin.close()
                    running.append((p, ok))
                still = []
                for p, ok in running:
                    if p.poll() is None:
                        still.append((p, ok))
                    elif p.returncode not in ok:
                        failures += 1
                running = still
                time.sleep(0.001)
            wall = time.perf_counter() - t
            results.setdefault("load", {})[f"{engine}/{procs}"] = {"ops": total, "ops_per_s": total / wall,
                                                                   "failures": failures}
            print(f"load [{engine}] {procs} processes: {total} mixed operations, {total/wall:.1f} ops/s, "
                  f"{failures} failures (target 0)")


# ------------------------------------------------------------ import

def write_csv(path, n, start=0):
    with open(path, "w", encoding="utf-8") as f:
        f.write("tipo;nit;email;nombre\r\n")
        for i in range(start, start + n):
            f.write(f"Cliente Factura;{nit(i)};c{i}@example.co;Cliente número {i}\r\n")


def section_import(results):
    n = 10_000 if QUICK else 100_000
    for engine in engines():
        db = Db(engine)
        csv = os.path.join(db.dir, "clientes.csv")
        write_csv(csv, n)
        wall, _, rss = db.cli("user", "import", csv)
        target = 10 if engine == "sqlite" else 20
        results.setdefault("import", {})[engine] = {"rows": n, "s": wall, "peak_mib": rss / 1024}
        print(f"import [{engine}]: {n} rows in {wall:.2f} s (target < {target} s at 100k), peak {rss/1024:.0f} MiB")


def section_invite(results):
    n = 1_000 if QUICK else 10_000
    times = {}
    for threads in ("default", "1"):
        db = Db("sqlite")
        csv = os.path.join(db.dir, "invitar.csv")
        write_csv(csv, n)
        db.cli("user", "import", csv, "--invite")
        extra = {} if threads == "default" else {"RAYON_NUM_THREADS": "1"}
        wall, _, _ = db.cli("mail", "retry", **extra)
        times[threads] = wall
    ratio = times["default"] / times["1"]
    results["invite"] = {"invitations": n, "parallel_s": times["default"], "one_core_s": times["1"], "ratio": ratio}
    print(f"invitations: mail retry of {n}: {times['default']:.1f} s on every core, {times['1']:.1f} s on one; "
          f"ratio {ratio:.2f} (target about 0.5 on 2 cores)")


def section_export(results):
    sizes = (1_000, 10_000) if QUICK else (10_000, 100_000)
    peaks = {}
    for n in sizes:
        db = Db("sqlite")
        csv = os.path.join(db.dir, "c.csv")
        write_csv(csv, n)
        db.cli("user", "import", csv)
        _, _, rss = db.cli("user", "export", "--output", os.path.join(db.dir, "out.csv"))
        _, _, rss_j = db.cli("user", "export", "--format", "jsonl", "--output", os.path.join(db.dir, "out.jsonl"))
        peaks[n] = (rss / 1024, rss_j / 1024)
    results["export"] = {str(k): {"csv_mib": v[0], "jsonl_mib": v[1]} for k, v in peaks.items()}
    print("export peak RSS: " + ", ".join(f"{k} accounts {v[0]:.1f} MiB (csv) {v[1]:.1f} MiB (jsonl)"
                                          for k, v in peaks.items()))


SECTIONS = {
    "p0": section_p0,
    "startup": section_startup,
    "uniform": section_uniform,
    "load": section_load,
    "import": section_import,
    "invite": section_invite,
    "export": section_export,
}


def main():
    global QUICK
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    QUICK = a.quick
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, engines {','.join(engines())}")
    results = {"date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), "loadavg": os.getloadavg()[0]}
    for name in a.only.split(","):
        SECTIONS[name.strip()](results)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
