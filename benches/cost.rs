//! Cost per operation against argon2's own cost (in-process).
//!
//! Two parts, one process, one file-backed database (WAL, as in production):
//!
//! 1. Criterion groups (`hash`, `login`, `request`, `confirm`): one figure
//!    per operation, each measured on its own. Two floors: `hash/argon2id_floor`
//!    is `Hasher::hash`, one bare argon2id hash at recupera's parameters as
//!    every operation pays it (argon2 allocates its 19 MiB per call);
//!    `hash/argon2id_reused_memory` is the same computation into a buffer
//!    allocated once (`Argon2::hash_password_into_with_memory`): the
//!    compute-only cost, for comparison.
//! 2. An interleaved loop: every round runs every operation once, in a
//!    rotating order, so all operations see the same machine noise. The
//!    ratios printed at the end (unknown/known, operation/bare hash) are the
//!    medians of the per-round ratios of that loop: paired, same run.
//!
//! Per-iteration set-up (clearing the counters a wrong attempt leaves, moving
//! the clock past the request throttle) is done outside the timed region.
//!
//! What "known" means for each operation:
//! - login: the account exists and has a password; right / wrong password.
//! - request: the account exists, the email matches and it is *not*
//!   throttled (the manual clock is moved 24 h between iterations), so the
//!   full issue path runs: code inserted, mail queued, `.eml` written to the
//!   outbox, mail marked sent. `request/known_throttled` is the same account
//!   without moving the clock (refused by the 60 s / 5-a-day limit).
//! - confirm: the account exists and has a live code; a wrong code is typed.
//!
//! The interleaved table also gives the minor page faults taken inside each
//! timed call: ~4,900 means argon2's 19 MiB came fresh from the kernel.
//!
//! Environment (criterion's own flags still work after `--`):
//! - `COST_ROUNDS`: rounds of the interleaved loop (default 41; 1 when run
//!   by `cargo test --benches`).
//! - `COST_SKIP_CRITERION=1`: only the interleaved loop.
//! - `COST_OPS=confirm,login/unknown`: only operations whose name contains
//!   one of these (the floors always run); for profiling one path.
//! - `COST_HASH_ONLY=N`: print one JSON line and exit: N x `Hasher::hash`
//!   timed in this fresh process (the first is "cold"), N x the reused-memory
//!   hash, and the typed-only password policy twice (the first call builds
//!   zxcvbn's dictionaries). `scripts/bench.py` runs it as its in-process
//!   floor, interleaved with its whole-process runs.

/// The binary's allocator (huge pages for argon2's 19 MiB), so that the
/// in-process floor and the operations are measured like for like with the
/// shipped `recupera`.
#[global_allocator]
static ALLOCATOR: recupera::alloc::HugePages = recupera::alloc::HugePages;

use criterion::Criterion;
use recupera::app::App;
use recupera::clock::{Clock, ManualClock};
use recupera::commands::login::{LoginOutcome, login};
use recupera::commands::reset::{ConfirmOutcome, RequestResult, confirm, request};
use recupera::commands::user::{NewUser, add};
use recupera::domain::account::{AccountType, Ident};
use recupera::domain::email::Email;
use recupera::domain::hash::Hasher;
use recupera::domain::nit::Nit;
use recupera::domain::password::Password;
use recupera::i18n::Lang;
use recupera::mail::{DEFAULT_FROM, Mailer, Transport, parse_from};
use recupera::store::Store;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PW: &str = "correct-horse-battery-staple-42";
const WRONG_PW: &str = "correct-horse-battery-staple-43";
const NEW_PW: &str = "vaca-morada-trompeta-1987-lluvia";
const REAL_CODE: &str = "ABCDE";
const WRONG_CODE: &str = "ZZZZZ";
const START: i64 = 1_750_000_000;

struct Fx {
    _dir: tempfile::TempDir,
    app: App,
    clock: Arc<ManualClock>,
    hasher: Hasher,
    reused: Reused,
    /// Login account (has a password).
    login_nit: Nit,
    login_id: i64,
    /// Request account (no password; only requests touch it).
    req_nit: Nit,
    req_email: Email,
    /// Confirm account with one live code whose clear text is REAL_CODE.
    conf_nit: Nit,
    conf_id: i64,
    conf_code_id: i64,
    unknown_nit: Nit,
    new_pw: Password,
}

fn nit(s: &str) -> Nit {
    Nit::parse(s).expect("nit")
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::Builder::new()
            .prefix("recupera-bench-cost-")
            .tempdir()
            .expect("tempdir");
        let store =
            Store::open(&dir.path().join("recupera.db"), Duration::from_secs(10)).expect("open");
        let clock = Arc::new(ManualClock::new(START));
        let mailer = Mailer {
            transport: Transport::Outbox(dir.path().join("outbox")),
            from: parse_from(DEFAULT_FROM).expect("from"),
            footer: None,
        };
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let mut app = App::with(store, dyn_clock, mailer, "bench");
        let mut mk = |n: &str, e: &str, pw: Option<&str>| {
            let pw = pw.map(|p| Password::new(p).expect("pw"));
            add(
                &mut app,
                &NewUser {
                    kind: AccountType::Cliente,
                    nit: nit(n),
                    email: email(e),
                    username: None,
                    name: None,
                    lang: Lang::Es,
                },
                pw.as_ref(),
            )
            .expect("user add")
            .id
        };
        let login_id = mk("900102030", "login@example.co", Some(PW));
        mk("900102031", "request@example.co", None);
        let conf_id = mk("900102032", "confirm@example.co", None);
        // Some other accounts, so the tables are not trivially small.
        for i in 0..200 {
            mk(
                &format!("{}", 800_000_000 + i),
                &format!("u{i}@example.co"),
                None,
            );
        }
        // A live code for the confirm account, issued the real way, then
        // re-keyed to a known clear text so the typed code is surely wrong.
        let out = request(
            &mut app,
            AccountType::Cliente,
            &Ident::Nit(nit("900102032")),
            &email("confirm@example.co"),
        )
        .expect("request");
        assert_eq!(out.result, RequestResult::Sent);
        let hasher = Hasher::new(None);
        let real = hasher.hash(REAL_CODE.as_bytes()).expect("hash");
        let conf_code_id: i64 = app
            .store
            .raw()
            .query_row(
                "SELECT id FROM codes WHERE account_id = ?1 AND state = 'pending'",
                [conf_id],
                |r| r.get(0),
            )
            .expect("code");
        app.store
            .raw()
            .execute(
                "UPDATE codes SET code_hash = ?2 WHERE id = ?1",
                rusqlite::params![conf_code_id, real],
            )
            .expect("rekey");
        Fx {
            _dir: dir,
            app,
            clock,
            hasher,
            reused: Reused::new(),
            login_nit: nit("900102030"),
            login_id,
            req_nit: nit("900102031"),
            req_email: email("request@example.co"),
            conf_nit: nit("900102032"),
            conf_id,
            conf_code_id,
            unknown_nit: nit("999999999"),
            new_pw: Password::new(NEW_PW).expect("new pw"),
        }
    }

    fn exec(&self, sql: &str, a: i64, b: i64) {
        self.app
            .store
            .raw()
            .execute(sql, [a, b])
            .expect("fixture sql");
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Hash,
    HashReused,
    LoginRight,
    LoginWrong,
    LoginUnknown,
    RequestKnown,
    RequestThrottled,
    RequestUnknown,
    ConfirmKnown,
    ConfirmUnknown,
}

const OPS: [Op; 10] = [
    Op::Hash,
    Op::HashReused,
    Op::LoginRight,
    Op::LoginWrong,
    Op::LoginUnknown,
    Op::RequestKnown,
    Op::RequestThrottled,
    Op::RequestUnknown,
    Op::ConfirmKnown,
    Op::ConfirmUnknown,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Hash => "hash/argon2id_floor",
            Op::HashReused => "hash/argon2id_reused_memory",
            Op::LoginRight => "login/known_right",
            Op::LoginWrong => "login/known_wrong",
            Op::LoginUnknown => "login/unknown",
            Op::RequestKnown => "request/known_fresh",
            Op::RequestThrottled => "request/known_throttled",
            Op::RequestUnknown => "request/unknown",
            Op::ConfirmKnown => "confirm/known_wrong_code",
            Op::ConfirmUnknown => "confirm/unknown",
        }
    }
}

/// Minor page faults of this process so far (getrusage).
fn minflt() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru.ru_minflt as i64
    }
}

/// One timed call: wall time and the minor page faults taken meanwhile
/// (argon2's 19 MiB, when it comes fresh from the kernel, is ~4,900 faults).
#[derive(Clone, Copy)]
struct Sample {
    d: Duration,
    faults: i64,
}

struct Meter {
    t: Instant,
    f: i64,
}

impl Meter {
    fn start() -> Meter {
        let f = minflt();
        Meter {
            t: Instant::now(),
            f,
        }
    }

    fn stop(self) -> Sample {
        let d = self.t.elapsed();
        Sample {
            d,
            faults: minflt() - self.f,
        }
    }
}

/// Runs one operation: untimed set-up, then the timed call. Checks the
/// outcome so a benchmark never silently measures another path.
fn run(fx: &mut Fx, op: Op) -> Sample {
    let kind = AccountType::Cliente;
    match op {
        Op::Hash => {
            let t = Meter::start();
            let h = fx.hasher.hash(black_box(PW.as_bytes())).expect("hash");
            let d = t.stop();
            black_box(h);
            d
        }
        Op::HashReused => {
            let t = Meter::start();
            let h = fx.reused.hash(black_box(PW.as_bytes()));
            let d = t.stop();
            black_box(h);
            d
        }
        Op::LoginRight | Op::LoginWrong | Op::LoginUnknown => {
            fx.exec(
                "UPDATE accounts SET failed_logins = ?2, login_locked_until = NULL WHERE id = ?1",
                fx.login_id,
                0,
            );
            let (n, pw) = match op {
                Op::LoginRight => (fx.login_nit.clone(), PW),
                Op::LoginWrong => (fx.login_nit.clone(), WRONG_PW),
                _ => (fx.unknown_nit.clone(), PW),
            };
            let ident = Ident::Nit(n);
            let t = Meter::start();
            let out = login(&mut fx.app, kind, &ident, pw).expect("login");
            let d = t.stop();
            assert_eq!(matches!(out, LoginOutcome::Ok(_)), op == Op::LoginRight);
            d
        }
        Op::RequestKnown | Op::RequestThrottled | Op::RequestUnknown => {
            let n = if op == Op::RequestUnknown {
                fx.unknown_nit.clone()
            } else {
                fx.req_nit.clone()
            };
            if op == Op::RequestKnown {
                // Past the 60 s and 5-a-day limits: a fresh request.
                fx.clock.advance(24 * 3600 + 1);
            }
            let ident = Ident::Nit(n);
            let t = Meter::start();
            let out = request(&mut fx.app, kind, &ident, &fx.req_email).expect("request");
            let d = t.stop();
            let want = match op {
                Op::RequestKnown => RequestResult::Sent,
                Op::RequestThrottled => RequestResult::Throttled,
                _ => RequestResult::UnknownAccount,
            };
            assert_eq!(out.result, want, "{}", op.name());
            d
        }
        Op::ConfirmKnown | Op::ConfirmUnknown => {
            // Keep the code live and fresh (the clock moves for requests).
            let now = fx.clock.now();
            fx.exec(
                "UPDATE codes SET state = 'pending', attempts = 0, created_at = ?2 - 60, \
                 expires_at = ?2 + 43200, ends_at = ?2 + 43200 WHERE id = ?1",
                fx.conf_code_id,
                now,
            );
            fx.exec(
                "UPDATE accounts SET failed_confirms = ?2 WHERE id = ?1",
                fx.conf_id,
                0,
            );
            let n = if op == Op::ConfirmUnknown {
                fx.unknown_nit.clone()
            } else {
                fx.conf_nit.clone()
            };
            let raw = n.as_str().to_string();
            let ident = Ident::Nit(n);
            let t = Meter::start();
            let out = confirm(
                &mut fx.app,
                Some(kind),
                &ident,
                &raw,
                WRONG_CODE,
                &fx.new_pw,
            )
            .expect("confirm");
            let d = t.stop();
            assert!(matches!(out, ConfirmOutcome::Refused), "{out:?}");
            d
        }
    }
}

fn criterion_groups(c: &mut Criterion, fx: &mut Fx) {
    let groups: [(&str, &[Op]); 4] = [
        ("hash", &[Op::Hash, Op::HashReused]),
        ("login", &[Op::LoginRight, Op::LoginWrong, Op::LoginUnknown]),
        (
            "request",
            &[Op::RequestKnown, Op::RequestThrottled, Op::RequestUnknown],
        ),
        ("confirm", &[Op::ConfirmKnown, Op::ConfirmUnknown]),
    ];
    for (group, ops) in groups {
        let mut g = c.benchmark_group(group);
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        for &op in ops {
            let id = op.name().split('/').nth(1).unwrap_or(op.name());
            g.bench_function(id, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run(fx, op).d).sum())
            });
        }
        g.finish();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn interleaved(fx: &mut Fx, rounds: usize) {
    // Warm-up: one of each, untimed (first .eml, first zxcvbn call...).
    for op in OPS {
        let _ = run(fx, op);
    }
    // COST_OPS=a,b: only operations whose name contains one of these (for
    // profiling one path, e.g. `perf record`); the hash is always kept.
    let only: Vec<String> = std::env::var("COST_OPS")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let selected = |op: Op| {
        matches!(op, Op::Hash | Op::HashReused)
            || only.is_empty()
            || only.iter().any(|o| op.name().contains(o.as_str()))
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); OPS.len()];
    let mut faults: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); OPS.len()];
    for r in 0..rounds {
        for k in 0..OPS.len() {
            let i = (r + k) % OPS.len();
            if selected(OPS[i]) {
                let s = run(fx, OPS[i]);
                samples[i].push(s.d.as_secs_f64() * 1e3);
                faults[i].push(s.faults as f64);
            }
        }
    }
    let idx = |op: Op| OPS.iter().position(|o| *o == op).unwrap_or(0);
    println!(
        "\n== interleaved: {rounds} rounds, every operation once per round, rotating order =="
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>14} {:>11}",
        "operation", "median ms", "p25 ms", "p75 ms", "faults median", "faults max"
    );
    for (i, op) in OPS.iter().enumerate() {
        let mut v = samples[i].clone();
        let mut f = faults[i].clone();
        println!(
            "{:<28} {:>10.2} {:>10.2} {:>10.2} {:>14.0} {:>11.0}",
            op.name(),
            median(&mut v.clone()),
            quantile(&mut v.clone(), 0.25),
            quantile(&mut v, 0.75),
            median(&mut f.clone()),
            quantile(&mut f, 1.0)
        );
    }
    let ratio = |a: Op, b: Op| -> (f64, f64, f64) {
        let mut r: Vec<f64> = samples[idx(a)]
            .iter()
            .zip(&samples[idx(b)])
            .map(|(x, y)| x / y)
            .collect();
        (
            median(&mut r.clone()),
            quantile(&mut r.clone(), 0.25),
            quantile(&mut r, 0.75),
        )
    };
    println!("\nratios (median of per-round ratios, [p25, p75]):");
    let show = |label: &str, a: Op, b: Op, target: &str| {
        let (m, lo, hi) = ratio(a, b);
        println!("RATIO {label:<44} {m:>6.3}  [{lo:.3}, {hi:.3}]  target {target}");
    };
    show(
        "login unknown / known_right",
        Op::LoginUnknown,
        Op::LoginRight,
        "0.95-1.05",
    );
    show(
        "login unknown / known_wrong",
        Op::LoginUnknown,
        Op::LoginWrong,
        "0.95-1.05",
    );
    show(
        "request unknown / known_fresh",
        Op::RequestUnknown,
        Op::RequestKnown,
        "0.95-1.05",
    );
    show(
        "request unknown / known_throttled",
        Op::RequestUnknown,
        Op::RequestThrottled,
        "0.95-1.05",
    );
    show(
        "confirm unknown / known_wrong_code",
        Op::ConfirmUnknown,
        Op::ConfirmKnown,
        "0.95-1.05",
    );
    show(
        "hash (Hasher::hash) / hash into reused memory",
        Op::Hash,
        Op::HashReused,
        "(info: the price of a fresh 19 MiB per hash)",
    );
    for op in OPS.iter().skip(2) {
        let target = match op {
            Op::ConfirmKnown | Op::ConfirmUnknown => "<= 2.20 (two hashes)",
            _ => "<= 1.10 (one hash)",
        };
        show(&format!("{} / bare hash", op.name()), *op, Op::Hash, target);
    }
}

/// argon2id at recupera's parameters into a block buffer allocated once and
/// reused: the compute-only floor (no allocation, no page faults).
struct Reused {
    argon: argon2::Argon2<'static>,
    mem: Vec<argon2::Block>,
}

impl Reused {
    fn new() -> Reused {
        use recupera::domain::hash::{M_COST, P_COST, T_COST};
        let params = argon2::Params::new(M_COST, T_COST, P_COST, Some(32)).expect("params");
        let mem = vec![argon2::Block::default(); params.block_count()];
        Reused {
            argon: argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params),
            mem,
        }
    }

    fn hash(&mut self, pw: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.argon
            .hash_password_into_with_memory(pw, b"recupera-benchsa", &mut out, &mut self.mem[..])
            .expect("argon2");
        out
    }
}

/// One JSON line for scripts/bench.py, from a fresh process:
/// `hash_ns`: N x `Hasher::hash` (the first is cold); `reused_ns`: N x the
/// compute-only floor; `policy_ns`: the typed-only password policy (zxcvbn)
/// twice (the first call builds zxcvbn's dictionaries).
fn hash_only(n: usize) {
    let h = Hasher::new(None);
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos().to_string()
    };
    let hash_ns: Vec<String> = (0..n)
        .map(|_| time(&mut || drop(black_box(h.hash(black_box(PW.as_bytes())).expect("hash")))))
        .collect();
    let mut r = Reused::new();
    let reused_ns: Vec<String> = (0..n)
        .map(|_| {
            time(&mut || {
                black_box(r.hash(black_box(PW.as_bytes())));
            })
        })
        .collect();
    let policy = recupera::domain::password::Policy::default();
    let pw = Password::new(NEW_PW).expect("pw");
    let policy_ns: Vec<String> = (0..2)
        .map(|_| time(&mut || policy.check_typed(&pw, Some("900102032")).expect("policy")))
        .collect();
    println!(
        "{{\"hash_ns\":[{}],\"reused_ns\":[{}],\"policy_ns\":[{}]}}",
        hash_ns.join(","),
        reused_ns.join(","),
        policy_ns.join(",")
    );
}

fn main() {
    if let Some(n) = std::env::var("COST_HASH_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        hash_only(n.max(1));
        return;
    }
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let rounds = std::env::var("COST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 41 } else { 1 });
    let mut fx = Fx::new();
    if std::env::var("COST_SKIP_CRITERION").as_deref() != Ok("1") {
        let mut c = Criterion::default().without_plots().configure_from_args();
        criterion_groups(&mut c, &mut fx);
        c.final_summary();
    }
    interleaved(&mut fx, rounds);
}
