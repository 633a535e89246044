//! Behaviour at a million codes (in-process).
//!
//! 1. Purge: databases with 1,000,000 codes (100,000 accounts x 10) and
//!    2,000,000 codes (x 20), half of them finished (expired, used or
//!    replaced), each code with its mail_queue row and its reset_requests
//!    row as the real flow leaves them, plus a "password changed" notice per
//!    used code. Built once by direct SQL (one transaction, prepared
//!    statements), then copied before every purge (purge is destructive).
//!    `commands::codes::purge` is timed on each copy, 1M and 2M alternating;
//!    the close (which checkpoints the WAL the purge wrote) is timed apart.
//! 2. Look-ups: 1,000 vs 1,000,000 accounts, each with one live code.
//!    Interleaved rounds time, on both databases: the SQL alone (account by
//!    NIT + its live code, the first step of login/confirm), a whole `login`
//!    (right password) and a whole `reset confirm` (wrong code) on random
//!    accounts. Criterion measures the SQL look-up too (group `lookup`).
//!
//! Environment:
//! - `SCALE_REPS`: purge repetitions per size (default 3; 1 under `cargo test`).
//! - `SCALE_ROUNDS`: look-up rounds (default 31).
//! - `SCALE_SIZES`: purge sizes in millions of codes, default `1,2`.
//! - `SCALE_SKIP_PURGE=1` / `SCALE_SKIP_LOOKUP=1`: one half only.
//! - `SCALE_DIR`: where the databases go (default: the system temp dir);
//!   `SCALE_KEEP=1` keeps them.
//! - Under `cargo test --benches` (no `--bench` argument) everything is
//!   scaled down 100x, as a smoke test.

/// The binary's allocator (huge pages for argon2's 19 MiB), so that the
/// in-process floor and the operations are measured like for like with the
/// shipped `recupera`.
#[global_allocator]
static ALLOCATOR: recupera::alloc::HugePages = recupera::alloc::HugePages;

use criterion::Criterion;
use recupera::app::App;
use recupera::clock::{Clock, ManualClock};
use recupera::commands::codes::purge;
use recupera::commands::login::{LoginOutcome, login};
use recupera::commands::reset::{ConfirmOutcome, confirm};
use recupera::domain::account::{AccountType, Ident};
use recupera::domain::hash::Hasher;
use recupera::domain::nit::Nit;
use recupera::domain::password::Password;
use recupera::mail::{DEFAULT_FROM, Mailer, Transport, parse_from};
use recupera::store::Store;
use rusqlite::params;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PW: &str = "correct-horse-battery-staple-42";
const NEW_PW: &str = "vaca-morada-trompeta-1987-lluvia";
const REAL_CODE: &str = "ABCDE";
const WRONG_CODE: &str = "ZZZZZ";
/// A PHC string of the real length (97 bytes); never verified.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
const NIT_BASE: i64 = 800_000_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(1_750_000_000)
}

fn app_over(path: &Path, now: i64) -> (App, Arc<ManualClock>) {
    let store = Store::open(path, Duration::from_secs(10)).expect("open");
    let clock = Arc::new(ManualClock::new(now));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let mailer = Mailer {
        transport: Transport::Outbox(path.with_extension("outbox")),
        from: parse_from(DEFAULT_FROM).expect("from"),
        footer: None,
    };
    (App::with(store, dyn_clock, mailer, "bench"), clock)
}

fn file_mb(p: &Path) -> f64 {
    std::fs::metadata(p)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0)
}

// ------------------------------------------------------------------ build

#[derive(Debug, Clone, Copy, Default)]
struct Built {
    accounts: u64,
    codes: u64,
    finished_codes: u64,
    mails: u64,
    finished_notices: u64,
    requests: u64,
    old_requests: u64,
}

/// Accounts 1..=n_acc (NIT 800000000+i); per account `per_acc` codes, the
/// first half finished 2–3 days ago (a third each: used, replaced, expired
/// while pending), the second half pending and live for 11 more hours.
/// `pw_hash`/`code_hash`: what the rows hold (real PHC strings for the
/// look-up databases, a dummy for the purge ones).
fn build(path: &Path, n_acc: i64, per_acc: i64, now: i64, pw_hash: &str, code_hash: &str) -> Built {
    let _ = std::fs::remove_file(path);
    let store = Store::open(path, Duration::from_secs(10)).expect("open");
    let c = store.raw();
    c.execute_batch("BEGIN IMMEDIATE").expect("begin");
    let mut b = Built::default();
    {
        let mut acc = c
            .prepare(
                "INSERT INTO accounts (id, kind, nit, email, name, password_hash, created_at, \
                 password_changed_at) VALUES (?1, 'cliente', ?2, ?3, ?4, ?5, ?6, ?6)",
            )
            .expect("prepare");
        let mut code = c
            .prepare(
                "INSERT INTO codes (id, account_id, code_hash, created_at, expires_at, ends_at, \
                 attempts, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .expect("prepare");
        let mut mail = c
            .prepare(
                "INSERT INTO mail_queue (account_id, code_id, kind, recipient, created_at, state, \
                 attempts, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, 'sent', 1, ?6)",
            )
            .expect("prepare");
        let mut req = c
            .prepare("INSERT INTO reset_requests (account_id, at) VALUES (?1, ?2)")
            .expect("prepare");
        let mut code_id = 0i64;
        for a in 1..=n_acc {
            let email = format!("cuenta{a}@empresa{}.example.co", a % 997);
            acc.execute(params![
                a,
                (NIT_BASE + a).to_string(),
                email,
                format!("Cuenta {a}"),
                pw_hash,
                now - 90 * 86_400
            ])
            .expect("account");
            b.accounts += 1;
        }
        // Row order: `SCALE_LAYOUT=time` (default) inserts codes in time
        // order, as production does (finished codes are the oldest rows);
        // `SCALE_LAYOUT=account` groups each account's codes, which puts
        // finished and live codes on every page (a worst case for purge).
        let by_account = std::env::var("SCALE_LAYOUT").as_deref() == Ok("account");
        let pairs: Vec<(i64, i64)> = if by_account {
            (1..=n_acc)
                .flat_map(|a| (0..per_acc).map(move |j| (a, j)))
                .collect()
        } else {
            (0..per_acc)
                .flat_map(|j| (1..=n_acc).map(move |a| (a, j)))
                .collect()
        };
        for (a, j) in pairs {
            let email = format!("cuenta{a}@empresa{}.example.co", a % 997);
            let finished = per_acc / 2;
            {
                code_id += 1;
                let (created, expires, ends, attempts, state) = if j < finished {
                    let created = now - 3 * 86_400 + j * 3_600;
                    let expires = created + 43_200;
                    match j % 3 {
                        0 => (created, expires, created + 600, 1, "used"),
                        1 => (created, expires, created + 1_800, 0, "replaced"),
                        _ => (created, expires, expires, 2, "pending"),
                    }
                } else {
                    let created = now - 3_600 + (j - finished);
                    let expires = created + 43_200;
                    (created, expires, expires, 0, "pending")
                };
                code.execute(params![
                    code_id, a, code_hash, created, expires, ends, attempts, state
                ])
                .expect("code");
                b.codes += 1;
                mail.execute(params![
                    a,
                    code_id,
                    "reset_code",
                    email,
                    created,
                    created + 1
                ])
                .expect("mail");
                b.mails += 1;
                req.execute(params![a, created]).expect("request");
                b.requests += 1;
                if j < finished {
                    b.finished_codes += 1;
                    b.old_requests += 1;
                    if state == "used" {
                        mail.execute(params![
                            a,
                            Option::<i64>::None,
                            "password_changed",
                            email,
                            ends,
                            ends + 1
                        ])
                        .expect("notice");
                        b.mails += 1;
                        b.finished_notices += 1;
                    }
                }
            }
        }
    }
    c.execute_batch("COMMIT").expect("commit");
    c.execute_batch("ANALYZE").ok();
    // recupera does not checkpoint on close: fold the WAL into the file so
    // that copying the .db copies everything.
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(store);
    b
}

// ------------------------------------------------------------------ purge

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
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

struct PurgeRun {
    copy: f64,
    open: f64,
    dry: f64,
    purge: f64,
    close: f64,
}

fn purge_once(template: &Path, work: &Path, now: i64, expect: &Built) -> PurgeRun {
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", work.display()));
    }
    let t = Instant::now();
    std::fs::copy(template, work).expect("copy");
    let copy = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (mut app, _clock) = app_over(work, now);
    let open = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let dry_counts = purge(&mut app, true).expect("dry run");
    let dry = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let counts = purge(&mut app, false).expect("purge");
    let purge_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    drop(app);
    let close = t.elapsed().as_secs_f64();
    assert_eq!(counts, dry_counts);
    assert_eq!(counts.codes, expect.finished_codes, "codes purged");
    assert_eq!(
        counts.mails,
        expect.finished_codes + expect.finished_notices,
        "mails purged"
    );
    assert_eq!(counts.requests, expect.old_requests, "requests purged");
    PurgeRun {
        copy,
        open,
        dry,
        purge: purge_s,
        close,
    }
}

fn purge_bench(dir: &Path, scale_down: i64) {
    let sizes: Vec<i64> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let reps = env_usize("SCALE_REPS", if scale_down > 1 { 1 } else { 3 });
    let now = now_unix();
    let n_acc = 100_000 / scale_down;
    println!(
        "== purge: {n_acc} accounts; sizes {sizes:?} million codes (half finished); {reps} reps =="
    );
    let mut templates = Vec::new();
    for &m in &sizes {
        let path = dir.join(format!("purge-{m}M.db"));
        let t = Instant::now();
        let built = build(&path, n_acc, 10 * m, now, DUMMY_PHC, DUMMY_PHC);
        let secs = t.elapsed().as_secs_f64();
        let rows = built.accounts + built.codes + built.mails + built.requests;
        println!(
            "built {}: {} codes, {} mails, {} requests, {} accounts in {:.1} s ({:.0} rows/s), {:.0} MB",
            path.display(),
            built.codes,
            built.mails,
            built.requests,
            built.accounts,
            secs,
            rows as f64 / secs,
            file_mb(&path)
        );
        templates.push((m, path, built));
    }
    let work = dir.join("purge-work.db");
    let mut results: Vec<Vec<PurgeRun>> = templates.iter().map(|_| Vec::new()).collect();
    for r in 0..reps {
        // Alternate the order so neither size always runs first.
        let order: Vec<usize> = if r % 2 == 0 {
            (0..templates.len()).collect()
        } else {
            (0..templates.len()).rev().collect()
        };
        for i in order {
            let (m, path, built) = &templates[i];
            let run = purge_once(path, &work, now, built);
            println!(
                "  rep {r} {m}M: copy {:.2} s, open {:.3} s, dry-run {:.2} s, purge {:.2} s, close {:.2} s",
                run.copy, run.open, run.dry, run.purge, run.close
            );
            results[i].push(run);
        }
    }
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", work.display()));
    }
    println!(
        "\n{:<6} {:>10} {:>10} {:>10} {:>12} {:>14} {:>16}",
        "size", "dry-run s", "purge s", "close s", "purge+close", "s/M stored", "s/M purged"
    );
    let mut totals = Vec::new();
    for (i, (m, _, built)) in templates.iter().enumerate() {
        let rs = &results[i];
        let dry = median(&rs.iter().map(|r| r.dry).collect::<Vec<_>>());
        let p = median(&rs.iter().map(|r| r.purge).collect::<Vec<_>>());
        let c = median(&rs.iter().map(|r| r.close).collect::<Vec<_>>());
        let tot = median(&rs.iter().map(|r| r.purge + r.close).collect::<Vec<_>>());
        totals.push(tot);
        println!(
            "{:<6} {:>10.2} {:>10.2} {:>10.2} {:>12.2} {:>14.2} {:>16.2}",
            format!("{m}M"),
            dry,
            p,
            c,
            tot,
            tot / (built.codes as f64 / 1e6),
            tot / (built.finished_codes as f64 / 1e6)
        );
    }
    if totals.len() >= 2 {
        // Paired per rep: same rep, both sizes, back to back.
        let per_rep: Vec<f64> = results[1]
            .iter()
            .zip(&results[0])
            .map(|(b, a)| (b.purge + b.close) / (a.purge + a.close))
            .collect();
        println!(
            "RATIO purge {}M/{}M (purge+close, median of per-rep ratios) {:.3}  target <= 2.2 (linear)",
            templates[1].0,
            templates[0].0,
            median(&per_rep)
        );
    }
    if std::env::var("SCALE_KEEP").as_deref() != Ok("1") {
        for (_, p, _) in &templates {
            let _ = std::fs::remove_file(p);
        }
    }
}

// ---------------------------------------------------------------- look-up

struct LookupDb {
    label: String,
    n: i64,
    app: App,
    clock: Arc<ManualClock>,
    rng: u64,
}

impl LookupDb {
    fn next_account(&mut self) -> i64 {
        // xorshift64*: deterministic, spread over the whole table.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        1 + (x % self.n as u64) as i64
    }

    fn sql_lookup(&mut self, k: usize) -> f64 {
        let now = self.clock.now();
        let ids: Vec<i64> = (0..k).map(|_| self.next_account()).collect();
        let t = Instant::now();
        for id in ids {
            let nit = Nit::from_stored((NIT_BASE + id).to_string());
            let found = self
                .app
                .store
                .read(|tx| {
                    let accs = tx.accounts_by_nit(Some(AccountType::Cliente), &nit)?;
                    let code = match accs.first() {
                        Some(a) => tx.live_code(a.id, now)?,
                        None => None,
                    };
                    Ok((accs.len(), code.is_some()))
                })
                .expect("lookup");
            assert_eq!(found, (1, true));
            black_box(found);
        }
        t.elapsed().as_secs_f64() * 1e6 / k as f64
    }

    fn login(&mut self) -> f64 {
        let id = self.next_account();
        let nit = Nit::from_stored((NIT_BASE + id).to_string());
        let ident = Ident::Nit(nit);
        let t = Instant::now();
        let out = login(&mut self.app, AccountType::Cliente, &ident, PW).expect("login");
        let d = t.elapsed().as_secs_f64() * 1e3;
        assert!(matches!(out, LoginOutcome::Ok(_)));
        d
    }

    fn confirm(&mut self, pw: &Password) -> f64 {
        let id = self.next_account();
        // A wrong attempt leaves counters: clear them (untimed).
        self.app
            .store
            .raw()
            .execute_batch(&format!(
                "UPDATE codes SET attempts = 0 WHERE account_id = {id} AND state = 'pending';\
                 UPDATE accounts SET failed_confirms = 0 WHERE id = {id};"
            ))
            .expect("reset counters");
        let nit = Nit::from_stored((NIT_BASE + id).to_string());
        let raw = nit.as_str().to_string();
        let ident = Ident::Nit(nit);
        let t = Instant::now();
        let out = confirm(
            &mut self.app,
            Some(AccountType::Cliente),
            &ident,
            &raw,
            WRONG_CODE,
            pw,
        )
        .expect("confirm");
        let d = t.elapsed().as_secs_f64() * 1e3;
        assert!(matches!(out, ConfirmOutcome::Refused));
        d
    }
}

fn lookup_bench(dir: &Path, scale_down: i64, c: Option<&mut Criterion>) {
    let now = now_unix();
    let hasher = Hasher::new(None);
    let pw_hash = hasher.hash(PW.as_bytes()).expect("hash");
    let code_hash = hasher.hash(REAL_CODE.as_bytes()).expect("hash");
    let sizes = [1_000 / scale_down.min(10), 1_000_000 / scale_down];
    let mut dbs = Vec::new();
    for n in sizes {
        let path = dir.join(format!("lookup-{n}.db"));
        let t = Instant::now();
        // One live code per account (per_acc = 1 gives 0 finished + 1 live).
        let built = build(&path, n, 1, now, &pw_hash, &code_hash);
        println!(
            "built {}: {} accounts, {} codes in {:.1} s, {:.0} MB",
            path.display(),
            built.accounts,
            built.codes,
            t.elapsed().as_secs_f64(),
            file_mb(&path)
        );
        let (app, clock) = app_over(&path, now);
        dbs.push(LookupDb {
            label: if n >= 1_000_000 {
                format!("{}M", n / 1_000_000)
            } else {
                format!("{n}")
            },
            n,
            app,
            clock,
            rng: 0x9E37_79B9_7F4A_7C15 ^ n as u64,
        });
    }
    // Query plans of the look-ups, for the record.
    for (label, sql) in [
        (
            "accounts_by_nit",
            "SELECT * FROM accounts WHERE nit = '800000001' AND ('cliente' IS NULL OR kind = 'cliente') ORDER BY kind",
        ),
        (
            "live_code",
            "SELECT id FROM codes WHERE account_id = 1 AND state = 'pending' AND ends_at > 0 ORDER BY id DESC LIMIT 1",
        ),
    ] {
        let conn = dbs[1].app.store.raw();
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("eqp");
        let plan: Vec<String> = st
            .query_map([], |r| r.get::<_, String>(3))
            .expect("eqp")
            .filter_map(|r| r.ok())
            .collect();
        println!("plan {label}: {}", plan.join(" | "));
    }
    let new_pw = Password::new(NEW_PW).expect("pw");
    // Warm-up (page cache, zxcvbn's dictionaries, argon2's allocation).
    for db in dbs.iter_mut() {
        db.sql_lookup(200);
        db.login();
        db.confirm(&new_pw);
    }
    if let Some(c) = c {
        let mut g = c.benchmark_group("lookup");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for db in dbs.iter_mut() {
            let label = db.label.clone();
            g.bench_function(format!("sql_by_nit_and_live_code/{label}_accounts"), |b| {
                b.iter_custom(|iters| {
                    Duration::from_secs_f64(db.sql_lookup(iters as usize) * 1e-6 * iters as f64)
                })
            });
        }
        g.finish();
    }
    let rounds = env_usize("SCALE_ROUNDS", if scale_down > 1 { 2 } else { 31 });
    let k = 500;
    let mut sql: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut lg: Vec<Vec<f64>> = vec![Vec::new(); 2];
    let mut cf: Vec<Vec<f64>> = vec![Vec::new(); 2];
    for r in 0..rounds {
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            sql[i].push(dbs[i].sql_lookup(k));
            lg[i].push(dbs[i].login());
            cf[i].push(dbs[i].confirm(&new_pw));
        }
    }
    let paired = |v: &[Vec<f64>]| -> f64 {
        median(
            &v[1]
                .iter()
                .zip(&v[0])
                .map(|(b, a)| b / a)
                .collect::<Vec<_>>(),
        )
    };
    println!(
        "\n== look-ups: {} vs {} accounts, {rounds} interleaved rounds ==",
        dbs[0].label, dbs[1].label
    );
    println!(
        "{:<34} {:>12} {:>12} {:>10}",
        "operation",
        dbs[0].label.clone() + " accts",
        dbs[1].label.clone() + " accts",
        "ratio"
    );
    println!(
        "{:<34} {:>12.1} {:>12.1} {:>10.3}",
        "SQL account+live code (us)",
        median(&sql[0]),
        median(&sql[1]),
        paired(&sql)
    );
    println!(
        "{:<34} {:>12.2} {:>12.2} {:>10.3}",
        "login right password (ms)",
        median(&lg[0]),
        median(&lg[1]),
        paired(&lg)
    );
    println!(
        "{:<34} {:>12.2} {:>12.2} {:>10.3}",
        "reset confirm wrong code (ms)",
        median(&cf[0]),
        median(&cf[1]),
        paired(&cf)
    );
    let (big, small) = (&dbs[1].label, &dbs[0].label);
    println!(
        "RATIO lookup SQL {big}/{small} {:.3}  target flat (<= 2; indexed, log n)",
        paired(&sql)
    );
    println!(
        "RATIO login {big}/{small} {:.3}  target 0.95-1.05",
        paired(&lg)
    );
    println!(
        "RATIO confirm {big}/{small} {:.3}  target 0.95-1.05",
        paired(&cf)
    );
    let paths: Vec<PathBuf> = dbs
        .iter()
        .map(|d| {
            d.app
                .store
                .raw()
                .path()
                .map(PathBuf::from)
                .unwrap_or_default()
        })
        .collect();
    drop(dbs);
    if std::env::var("SCALE_KEEP").as_deref() != Ok("1") {
        for p in paths {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
            }
            let _ = std::fs::remove_dir_all(p.with_extension("outbox"));
        }
    }
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let scale_down = if bench_mode { 1 } else { 100 };
    let base = std::env::var_os("SCALE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).expect("scale dir");
    let dir = tempfile::Builder::new()
        .prefix("recupera-bench-scale-")
        .tempdir_in(&base)
        .expect("tempdir");
    let dir_path = if std::env::var("SCALE_KEEP").as_deref() == Ok("1") {
        let p = dir.keep();
        println!("keeping {}", p.display());
        p
    } else {
        dir.path().to_path_buf()
    };
    let t0 = Instant::now();
    if std::env::var("SCALE_SKIP_PURGE").as_deref() != Ok("1") {
        purge_bench(&dir_path, scale_down);
    }
    if std::env::var("SCALE_SKIP_LOOKUP").as_deref() != Ok("1") {
        let mut c = Criterion::default().without_plots().configure_from_args();
        lookup_bench(&dir_path, scale_down, Some(&mut c));
        c.final_summary();
    }
    println!("\nscale bench total {:.0} s", t0.elapsed().as_secs_f64());
}
