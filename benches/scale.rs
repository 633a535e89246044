//! Behaviour at millions of rows, in-process, on both engines.
//!
//! 1. Purge: 1,000,000 and 2,000,000 stored codes (10 per account), half
//!    finished, in two row orders: "time" (codes in the order they were
//!    requested, the older half finished) and "worst" (finished and live
//!    codes interleaved, accounts random). SQLite databases are built once
//!    and copied before every purge; PostgreSQL ones are loaded with COPY
//!    each time. `ops::codes::purge` is timed; on SQLite, logins on a second
//!    connection run all through it, and the longest wait is reported.
//! 2. Look-ups: 1,000 vs 1,000,000 accounts with passwords; interleaved
//!    rounds time a whole `login` (right password) on random accounts.
//! 3. `db copy` of 100,000 accounts and 1,000,000 codes, SQLite to
//!    PostgreSQL and back.
//!
//! Environment: `SCALE_SIZES` (millions of codes, default `1,2`),
//! `SCALE_REPS` (default 3), `SCALE_ROUNDS` (default 31), `SCALE_ENGINES`
//! (`sqlite,postgres`), `SCALE_ORDERS` (`time,worst`), `SCALE_LOGINS=0`
//! (the purge alone, no logins beside it), `SCALE_DIR` (keep the SQLite
//! templates there between runs), `SCALE_SKIP=purge,lookup,copy`. Under
//! `cargo test --benches` everything is scaled down 100x (a smoke test).

use recupera::app::App;
use recupera::clock::{Clock, ManualClock};
use recupera::domain::account::{Account, AccountType, Ident};
use recupera::domain::email::Email;
use recupera::domain::hash::Hasher;
use recupera::domain::lang::Lang;
use recupera::domain::limits::{ChannelState, LoginState, RequestLog};
use recupera::domain::nit::Nit;
use recupera::mail::{DEFAULT_FROM, Mailer, Transport, parse_from};
use recupera::ops::login::{LoginOutcome, login};
use recupera::store::{CodeRecord, CodeState, Delivery, Location, MailState, Record, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PW: &str = "correct-horse-battery-staple-42";
const NOW: i64 = 1_750_000_000;
const NIT_BASE: i64 = 100_000_000;

fn env_list(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A small deterministic generator (xorshift), so both engines get the
/// same rows.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn account(id: i64, hash: Option<&str>) -> Account {
    let nit = Nit::parse(&(NIT_BASE + id).to_string()).expect("nit");
    Account {
        id,
        kind: AccountType::Cliente,
        nit,
        username: None,
        email: Email::from_stored(format!("c{id}@example.co")),
        name: None,
        lang: Lang::Es,
        password_hash: hash.map(str::to_string),
        created_at: NOW - 86_400,
        password_changed_at: None,
        last_login_at: None,
        login: LoginState::default(),
        channel: ChannelState::default(),
        request_log: RequestLog::default(),
        live_code_id: None,
        disabled: None,
    }
}

/// Loads `n_acc` accounts and `n_codes` codes into an empty store, half of
/// the codes finished.
fn load(store: &mut Store, n_acc: i64, n_codes: i64, worst: bool, acc_hash: Option<&str>) {
    let code_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    store
        .write(|tx| {
            for id in 1..=n_acc {
                tx.load(&Record::Account(Box::new(account(id, acc_hash))))?;
            }
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            for i in 0..n_codes {
                let finished = if worst { i % 2 == 0 } else { i < n_codes / 2 };
                let created = NOW - 24 * 3600 + i * 12 * 3600 / n_codes.max(1);
                let account_id = if worst {
                    1 + (rng.next() % n_acc as u64) as i64
                } else {
                    1 + i % n_acc
                };
                // Finished codes ended before NOW (used early or expired);
                // in the worst order their ends are scattered.
                let ends = if finished {
                    if worst {
                        NOW - 1 - (rng.next() % 36_000) as i64
                    } else {
                        created + 600
                    }
                } else {
                    NOW + 3600 + i
                };
                let code = CodeRecord {
                    id: i + 1,
                    account_id,
                    hash: Some(code_hash.to_string()),
                    created_at: created,
                    expires_at: created + 12 * 3600,
                    ends_at: ends,
                    attempts: 0,
                    state: if finished && i % 3 == 0 {
                        CodeState::Used
                    } else if finished && i % 3 == 1 {
                        CodeState::Replaced
                    } else {
                        CodeState::Pending
                    },
                    mail: Delivery {
                        recipient: format!("c{account_id}@example.co"),
                        state: MailState::Sent,
                        attempts: 1,
                        last_error: None,
                        finished_at: Some(created),
                        claim: None,
                        claimed_until: None,
                    },
                };
                tx.load(&Record::Code(Box::new(code)))?;
            }
            tx.finish_load()?;
            Ok(())
        })
        .expect("load");
}

fn app(store: Store, outbox: &Path) -> (App, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let mailer = Mailer {
        transport: Transport::Outbox(outbox.to_path_buf()),
        from: parse_from(DEFAULT_FROM).expect("from"),
        footer: None,
    };
    (App::with(store, dyn_clock, mailer, "bench"), clock)
}

fn open(loc: &Location) -> Store {
    Store::open(loc, Duration::from_secs(60)).expect("open")
}

fn pg() -> Option<Location> {
    let url = recupera::testing::fresh_pg_url()?;
    Some(Location::parse(std::ffi::OsStr::new(&url), false, None).expect("url"))
}

fn copy_sqlite(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let (mut a, mut b) = (from.as_os_str().to_owned(), to.as_os_str().to_owned());
        a.push(suffix);
        b.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(&b));
        if Path::new(&a).exists() {
            std::fs::copy(PathBuf::from(a), PathBuf::from(&b)).expect("copy");
            // On disk before the clock starts: else the purge's first
            // checkpoint (which syncs the file) pays for writing the copy.
            std::fs::File::open(PathBuf::from(b))
                .and_then(|f| f.sync_all())
                .expect("sync");
        }
    }
}

fn purge_bench(dir: &Path, scale: i64, engines: &str) {
    let sizes: Vec<i64> = env_list("SCALE_SIZES", "1,2")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let reps = env_usize("SCALE_REPS", if scale > 1 { 1 } else { 3 });
    println!("\n== purge (codes stored, half finished; seconds per purge, median of {reps})");
    println!(
        "{:<9} {:<6} {:>10} {:>10} {:>14}",
        "engine", "order", "codes", "purge s", "s per M stored"
    );
    let orders = env_list("SCALE_ORDERS", "time,worst");
    let with_logins = env_usize("SCALE_LOGINS", 1) > 0;
    for worst in [false, true] {
        let order = if worst { "worst" } else { "time" };
        if !orders.contains(order) {
            continue;
        }
        let mut per_size = Vec::new();
        for &m in &sizes {
            let n_codes = m * 1_000_000 / scale;
            let n_acc = (n_codes / 10).max(1);
            if engines.contains("sqlite") {
                let template = dir.join(format!("purge-{m}-{order}.db"));
                if !template.exists() {
                    let mut s = open(&Location::Sqlite(template.clone()));
                    load(&mut s, n_acc, n_codes, worst, None);
                    s.compact().ok();
                }
                let mut times = Vec::new();
                let mut waits = Vec::new();
                for _ in 0..reps {
                    let work = dir.join("purge-work.db");
                    copy_sqlite(&template, &work);
                    let (mut a, _) =
                        app(open(&Location::Sqlite(work.clone())), &dir.join("outbox"));
                    // Logins on their own connection all through the purge:
                    // each waits for the batch that holds the write lock.
                    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    if !with_logins {
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    let logins = {
                        let (stop, work, outbox) = (stop.clone(), work.clone(), dir.join("outbox"));
                        std::thread::spawn(move || {
                            let (mut b, _) = app(open(&Location::Sqlite(work)), &outbox);
                            let who =
                                Ident::Nit(Nit::parse(&(NIT_BASE + 7).to_string()).expect("nit"));
                            let mut v = Vec::new();
                            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                                let t = Instant::now();
                                login(&mut b, AccountType::Cliente, &who, PW).expect("login");
                                v.push(t.elapsed().as_secs_f64());
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            v
                        })
                    };
                    let t = Instant::now();
                    let done = recupera::ops::codes::purge(&mut a, false).expect("purge");
                    times.push(t.elapsed().as_secs_f64());
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    waits.extend(logins.join().expect("logins"));
                    assert_eq!(done.codes as i64, n_codes / 2);
                }
                if !waits.is_empty() {
                    let n = waits.len();
                    let (at, worst) = waits
                        .iter()
                        .copied()
                        .enumerate()
                        .fold((0, 0.0), |a, (i, w)| if w > a.1 { (i + 1, w) } else { a });
                    let second = waits
                        .iter()
                        .copied()
                        .enumerate()
                        .filter(|(i, _)| *i + 1 != at)
                        .fold(0.0, |a: f64, (_, w)| a.max(w));
                    println!(
                        "          a login during that purge ({n} logins, each with its hash): median {:.3} s, longest {:.3} s (login {at}), next longest {:.3} s",
                        median(waits),
                        worst,
                        second
                    );
                }
                let s = median(times);
                per_size.push(("sqlite", m, s));
                println!(
                    "{:<9} {:<6} {:>10} {:>10.2} {:>14.2}",
                    "sqlite",
                    order,
                    n_codes,
                    s,
                    s / (n_codes as f64 / 1e6)
                );
            }
            if engines.contains("postgres") {
                let mut times = Vec::new();
                for _ in 0..reps.min(2) {
                    let Some(loc) = pg() else { break };
                    let mut s = open(&loc);
                    load(&mut s, n_acc, n_codes, worst, None);
                    let (mut a, _) = app(s, &dir.join("outbox"));
                    let t = Instant::now();
                    let done = recupera::ops::codes::purge(&mut a, false).expect("purge");
                    times.push(t.elapsed().as_secs_f64());
                    assert_eq!(done.codes as i64, n_codes / 2);
                }
                if !times.is_empty() {
                    let s = median(times);
                    per_size.push(("postgres", m, s));
                    println!(
                        "{:<9} {:<6} {:>10} {:>10.2} {:>14.2}",
                        "postgres",
                        order,
                        n_codes,
                        s,
                        s / (n_codes as f64 / 1e6)
                    );
                }
            }
        }
        for engine in ["sqlite", "postgres"] {
            let one = per_size.iter().find(|(e, m, _)| *e == engine && *m == 1);
            let two = per_size.iter().find(|(e, m, _)| *e == engine && *m == 2);
            if let (Some(a), Some(b)) = (one, two) {
                println!("{engine} {order}: 2M/1M = {:.2}", b.2 / a.2);
            }
        }
    }
}

fn lookup_bench(dir: &Path, scale: i64, engines: &str) {
    let rounds = env_usize("SCALE_ROUNDS", if scale > 1 { 3 } else { 31 });
    let big = 1_000_000 / scale;
    let hash = Hasher::new(None).hash(PW.as_bytes()).expect("hash");
    println!(
        "\n== look-ups: login (right password) at 1,000 vs {big} accounts, {rounds} interleaved rounds"
    );
    let mut dbs: Vec<(&str, i64, App)> = Vec::new();
    for n in [1_000, big] {
        if engines.contains("sqlite") {
            let mut s = open(&Location::Sqlite(dir.join(format!("lookup-{n}.db"))));
            load(&mut s, n, 0, false, Some(&hash));
            dbs.push(("sqlite", n, app(s, &dir.join("outbox")).0));
        }
        if engines.contains("postgres")
            && let Some(loc) = pg()
        {
            let mut s = open(&loc);
            load(&mut s, n, 0, false, Some(&hash));
            dbs.push(("postgres", n, app(s, &dir.join("outbox")).0));
        }
    }
    let mut rng = Rng(42);
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); dbs.len()];
    for _ in 0..rounds {
        for (i, (_, n, a)) in dbs.iter_mut().enumerate() {
            let id = 1 + (rng.next() % *n as u64) as i64;
            let who = Ident::Nit(Nit::parse(&(NIT_BASE + id).to_string()).expect("nit"));
            let t = Instant::now();
            let r = login(a, AccountType::Cliente, &who, PW).expect("login");
            times[i].push(t.elapsed().as_secs_f64());
            assert!(matches!(r, LoginOutcome::Ok(_)));
        }
    }
    for engine in ["sqlite", "postgres"] {
        let idx: Vec<usize> = (0..dbs.len()).filter(|i| dbs[*i].0 == engine).collect();
        if idx.len() == 2 {
            let ratios: Vec<f64> = times[idx[1]]
                .iter()
                .zip(&times[idx[0]])
                .map(|(b, s)| b / s)
                .collect();
            println!(
                "{engine}: login {:.2} ms at 1k, {:.2} ms at {big}: ratio {:.3}",
                median(times[idx[0]].clone()) * 1e3,
                median(times[idx[1]].clone()) * 1e3,
                median(ratios)
            );
        }
    }
}

fn copy_bench(dir: &Path, scale: i64) {
    let (n_acc, n_codes) = (100_000 / scale, 1_000_000 / scale);
    let Some(target) = pg() else {
        println!("\n== db copy: skipped (no PostgreSQL)");
        return;
    };
    let src_path = dir.join("copy-src.db");
    let mut src = open(&Location::Sqlite(src_path));
    load(&mut src, n_acc, n_codes, false, None);
    let mut dst = open(&target);
    let t = Instant::now();
    let rows = recupera::ops::db::copy(&mut src, &mut dst, |_, _| {}).expect("copy");
    let to_pg = t.elapsed().as_secs_f64();
    let mut back = open(&Location::Sqlite(dir.join("copy-back.db")));
    let t = Instant::now();
    recupera::ops::db::copy(&mut dst, &mut back, |_, _| {}).expect("copy back");
    let to_sqlite = t.elapsed().as_secs_f64();
    println!(
        "\n== db copy: {} accounts, {} codes",
        rows.accounts, rows.codes
    );
    println!("sqlite -> postgres {to_pg:.2} s; postgres -> sqlite {to_sqlite:.2} s");
}

fn main() {
    let under_test = !std::env::args().any(|a| a == "--bench");
    let scale = if under_test { 100 } else { 1 };
    let engines = env_list("SCALE_ENGINES", "sqlite,postgres");
    let skip = env_list("SCALE_SKIP", "");
    let temp = tempfile::Builder::new()
        .prefix("recupera-scale-")
        .tempdir()
        .expect("tempdir");
    // SCALE_DIR: a folder kept between runs, so the SQLite templates are
    // built once (delete it after a schema change).
    let kept = std::env::var_os("SCALE_DIR").map(PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temp.path());
    std::fs::create_dir_all(dir).expect("SCALE_DIR");
    if !skip.contains("purge") {
        purge_bench(dir, scale, &engines);
    }
    if !skip.contains("lookup") {
        lookup_bench(dir, scale, &engines);
    }
    if !skip.contains("copy") {
        copy_bench(dir, scale);
    }
}
