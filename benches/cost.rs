//! Cost per operation against argon2's own cost, in-process, on both
//! engines, measured in the same run.
//!
//! Every round runs every operation once, in a rotating order, so all see
//! the same machine noise; the ratios printed (operation / bare hash,
//! unknown / known) are medians of per-round ratios. Per-iteration set-up
//! (clearing the counters a wrong attempt leaves, a fresh code, an empty
//! request log) is done outside the timed region.
//!
//! Environment:
//! - `COST_ROUNDS`: rounds (default 31; 2 under `cargo test --benches`).
//! - `COST_ENGINES`: `sqlite,postgres` (default both; PostgreSQL through
//!   the test support's throwaway server, skipped when none is available).
//! - `COST_HASH_ONLY=N`: print one JSON line and exit: N `Hasher::hash`
//!   timings in this fresh process (the first pays the memory's faults).
//!   `scripts/bench.py` uses it as its in-process floor.

use recupera::app::App;
use recupera::clock::{Clock, ManualClock};
use recupera::domain::account::{AccountType, Ident};
use recupera::domain::email::Email;
use recupera::domain::hash::Hasher;
use recupera::domain::lang::Lang;
use recupera::domain::limits::{ChannelState, LoginState, RequestLog};
use recupera::domain::nit::Nit;
use recupera::domain::password::Password;
use recupera::mail::{DEFAULT_FROM, Mailer, Transport, parse_from};
use recupera::ops::accounts::{NewUser, add};
use recupera::ops::login::{LoginOutcome, login};
use recupera::ops::reset::{ConfirmOutcome, confirm, request};
use recupera::store::{Location, NewCode, Store};
use std::sync::Arc;
use std::time::Instant;

const PW: &str = "correct-horse-battery-staple-42";
const WRONG_PW: &str = "correct-horse-battery-staple-43";
const NEW_PW: &str = "vaca-morada-trompeta-1987-lluvia";
const REAL_CODE: &str = "ABCDE";
const WRONG_CODE: &str = "ZZZZZ";
const START: i64 = 1_750_000_000;

struct Fx {
    name: &'static str,
    _dir: tempfile::TempDir,
    app: App,
    clock: Arc<ManualClock>,
    login: Ident,
    login_id: i64,
    req: Ident,
    req_id: i64,
    req_email: Email,
    conf: Ident,
    conf_id: i64,
    unknown: Ident,
    new_pw: Password,
}

fn nit(s: &str) -> Nit {
    Nit::parse(s).expect("nit")
}

impl Fx {
    fn new(name: &'static str, loc: Location) -> Fx {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&loc, std::time::Duration::from_secs(10)).expect("open");
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
            let acc = add(
                &mut app,
                &NewUser {
                    kind: AccountType::Cliente,
                    nit: nit(n),
                    email: Email::parse(e).expect("email"),
                    username: None,
                    name: None,
                    lang: Lang::Es,
                },
                pw.as_ref(),
            )
            .expect("add");
            (Ident::Nit(acc.nit.clone()), acc.id)
        };
        let (login, login_id) = mk("900102030", "a@example.co", Some(PW));
        let (req, req_id) = mk("800003122", "b@example.co", None);
        let (conf, conf_id) = mk("830015428", "c@example.co", None);
        Fx {
            name,
            _dir: dir,
            app,
            clock,
            login,
            login_id,
            req,
            req_id,
            req_email: Email::parse("b@example.co").expect("email"),
            conf,
            conf_id,
            unknown: Ident::Nit(nit("899999034")),
            new_pw: Password::new(NEW_PW).expect("pw"),
        }
    }

    /// Clears what earlier iterations left: counters, the request log, and
    /// gives the confirm account a fresh live code whose clear value is
    /// REAL_CODE.
    fn reset(&mut self) {
        let hash = self.app.hasher.hash(REAL_CODE.as_bytes()).expect("hash");
        let now = self.clock.now();
        let (l, r, c) = (self.login_id, self.req_id, self.conf_id);
        let email = Email::parse("c@example.co").expect("email");
        self.app
            .store
            .write(|tx| {
                tx.set_login_state(l, &LoginState::default())?;
                tx.set_request_log(r, &RequestLog::default())?;
                tx.set_channel_state(c, &ChannelState::default())?;
                tx.insert_code(&NewCode {
                    account_id: c,
                    hash: Some(&hash),
                    now,
                    expires_at: now + 3600,
                    recipient: &email,
                    claim: None,
                })?;
                Ok(())
            })
            .expect("reset");
    }
}

#[derive(Clone, Copy)]
enum Op {
    Hash,
    LoginRight,
    LoginWrong,
    LoginUnknown,
    RequestKnown,
    RequestUnknown,
    ConfirmKnown,
    ConfirmUnknown,
}

const OPS: [(Op, &str); 8] = [
    (Op::Hash, "hash (argon2id floor)"),
    (Op::LoginRight, "login right"),
    (Op::LoginWrong, "login wrong"),
    (Op::LoginUnknown, "login unknown"),
    (Op::RequestKnown, "request known"),
    (Op::RequestUnknown, "request unknown"),
    (Op::ConfirmKnown, "confirm known (wrong code)"),
    (Op::ConfirmUnknown, "confirm unknown"),
];

fn run(fx: &mut Fx, op: Op) -> f64 {
    fx.reset();
    let a = &mut fx.app;
    let t = Instant::now();
    match op {
        Op::Hash => {
            std::hint::black_box(a.hasher.hash(PW.as_bytes()).expect("hash"));
        }
        Op::LoginRight => {
            let r = login(a, AccountType::Cliente, &fx.login, PW).expect("login");
            assert!(matches!(r, LoginOutcome::Ok(_)));
        }
        Op::LoginWrong => {
            let r = login(a, AccountType::Cliente, &fx.login, WRONG_PW).expect("login");
            assert!(matches!(r, LoginOutcome::Refused));
        }
        Op::LoginUnknown => {
            login(a, AccountType::Cliente, &fx.unknown, PW).expect("login");
        }
        Op::RequestKnown => {
            request(a, AccountType::Cliente, &fx.req, &fx.req_email).expect("request");
        }
        Op::RequestUnknown => {
            request(a, AccountType::Cliente, &fx.unknown, &fx.req_email).expect("request");
        }
        Op::ConfirmKnown => {
            let r =
                confirm(a, None, &fx.conf, "830015428", WRONG_CODE, &fx.new_pw).expect("confirm");
            assert!(matches!(r, ConfirmOutcome::Refused));
        }
        Op::ConfirmUnknown => {
            confirm(a, None, &fx.unknown, "899999034", WRONG_CODE, &fx.new_pw).expect("confirm");
        }
    }
    let s = t.elapsed().as_secs_f64();
    fx.clock.advance(1);
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
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

fn hash_only(n: usize) {
    recupera::argon2mem::prefault(Hasher::new(None).blocks(), 1);
    let h = Hasher::new(None);
    let times: Vec<String> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(h.hash(PW.as_bytes()).expect("hash"));
            format!("{:.6}", t.elapsed().as_secs_f64())
        })
        .collect();
    println!("{{\"hash_s\":[{}]}}", times.join(","));
}

fn main() {
    if let Some(n) = std::env::var("COST_HASH_ONLY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        hash_only(n);
        return;
    }
    let under_test = !std::env::args().any(|a| a == "--bench");
    let rounds: usize = std::env::var("COST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if under_test { 2 } else { 31 });
    let engines = std::env::var("COST_ENGINES").unwrap_or_else(|_| "sqlite,postgres".into());
    let mut fxs = Vec::new();
    if engines.contains("sqlite") {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cost.db");
        std::mem::forget(dir);
        fxs.push(Fx::new("sqlite", Location::Sqlite(path)));
    }
    if engines.contains("postgres")
        && let Some(url) = recupera::testing::fresh_pg_url()
    {
        let loc = Location::parse(std::ffi::OsStr::new(&url), false, None).expect("url");
        fxs.push(Fx::new("postgres", loc));
    }
    println!(
        "cost: {rounds} rounds, interleaved; times in ms (median), ratios median of per-round ratios"
    );
    for fx in &mut fxs {
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); OPS.len()];
        for round in 0..rounds {
            for k in 0..OPS.len() {
                let i = (k + round) % OPS.len();
                times[i].push(run(fx, OPS[i].0));
            }
        }
        let ratio = |a: usize, b: usize| {
            median(times[a].iter().zip(&times[b]).map(|(x, y)| x / y).collect())
        };
        println!("\n[{}]", fx.name);
        println!("{:<30} {:>8} {:>10}", "operation", "ms", "/ hash");
        for (i, (_, name)) in OPS.iter().enumerate() {
            println!(
                "{:<30} {:>8.2} {:>10.3}",
                name,
                median(times[i].clone()) * 1e3,
                ratio(i, 0)
            );
        }
        println!(
            "unknown/known: login {:.3}, request {:.3}, confirm {:.3}",
            ratio(3, 2),
            ratio(5, 4),
            ratio(7, 6)
        );
    }
}
