//! Real processes racing on one database, on both engines: what several
//! support agents (or a script and an agent) do at the same moment. Every
//! outcome is read back through the CLI's own JSON.

use crate::engines;
use crate::util::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

engines!(
    twenty_parallel_confirms_of_the_right_code_exactly_one_wins,
    thirty_parallel_requests_issue_one_code_and_one_mail,
    thirty_parallel_wrong_logins_check_the_password_exactly_five_times,
    four_processes_doing_a_thousand_mixed_operations_lose_nothing,
    six_processes_starting_on_an_empty_database_migrate_it_once,
);

/// One racer: an invocation and what it reads on standard input. Until the
/// race starts it is held blocked reading that input: `reset confirm` and
/// `login` read their password only once their database is open, and any
/// other command is held by a shell that execs it after one line (`gated`).
struct Racer<'e> {
    cmd: Cmd<'e>,
    input: String,
    gated: bool,
}

impl<'e> Racer<'e> {
    /// A command that reads `input` on stdin.
    fn reading(cmd: Cmd<'e>, input: String) -> Self {
        Racer {
            cmd,
            input,
            gated: false,
        }
    }

    /// A command that reads nothing: held by a shell gate.
    fn gated(cmd: Cmd<'e>) -> Self {
        Racer {
            cmd,
            input: String::new(),
            gated: true,
        }
    }

    /// The same invocation, alone, not held.
    fn run(self) -> Run {
        self.cmd.stdin(&self.input).run()
    }

    fn spawn(&self) -> std::process::Child {
        let mut c = if self.gated {
            behind_a_gate(self.cmd.command())
        } else {
            self.cmd.command()
        };
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    }
}

/// `sh -c 'read -r _ && exec PROGRAM ARGS…'` with the same environment: a
/// process that starts PROGRAM once it reads one line. (The shell reads a
/// pipe byte by byte, so whatever follows the line is left for PROGRAM.)
fn behind_a_gate(cmd: Command) -> Command {
    let mut gate = Command::new("sh");
    gate.arg("-c")
        .arg("read -r _ && exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => gate.env(k, v),
            None => gate.env_remove(k),
        };
    }
    gate
}

/// Whether a process is blocked in read(2) on its standard input (Linux's
/// /proc/PID/syscall); `None` where that cannot be told.
fn reading_stdin(pid: u32) -> Option<bool> {
    let read = if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        "0"
    } else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
        "63"
    } else {
        return None;
    };
    let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let mut f = s.split_whitespace();
    Some(f.next() == Some(read) && f.next() == Some("0x0"))
}

/// Starts every racer, waits until all of them are held at their stdin,
/// then releases them together: separate processes hitting one database
/// at the same moment. Results come back in the order given.
fn race(racers: Vec<Racer<'_>>) -> Vec<Run> {
    let mut children: Vec<_> = racers.iter().map(Racer::spawn).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for child in &mut children {
        loop {
            match reading_stdin(child.id()) {
                // Ended already (its answer is checked like the others').
                _ if child.try_wait().unwrap().is_some() => break,
                Some(true) => break,
                Some(false) => {
                    assert!(Instant::now() < deadline, "a racer never got ready");
                    std::thread::sleep(Duration::from_millis(2));
                }
                None => {
                    // No way to tell: give them all time to get there.
                    std::thread::sleep(Duration::from_secs(1));
                    break;
                }
            }
        }
    }
    for (child, racer) in children.iter_mut().zip(&racers) {
        let mut stdin = child.stdin.take().unwrap();
        let line = if racer.gated { "\n" } else { "" };
        let _ = stdin.write_all(format!("{line}{}", racer.input).as_bytes());
        // Dropped: EOF.
    }
    children
        .into_iter()
        .map(|c| {
            let out = wait_with_deadline(c, Duration::from_secs(120));
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .collect()
}

/// Neither an internal error, nor a database that could not be opened or
/// was busy, nor a crash: whatever else the answer is.
fn no_failure(r: &Run) {
    assert!(
        ![70, 74, 75, 101, -1].contains(&r.code) && !r.stderr.contains("panicked"),
        "exit {}\nstdout: {}\nstderr: {}",
        r.code,
        r.stdout,
        r.stderr
    );
}

/// The uniform refusal (exit 1 and the one message), nothing else.
fn refused(r: &Run, message: &str) {
    no_failure(r);
    r.code(1).stderr_has(message);
}

fn confirm<'e>(env: &'e Env, user: &str, code: &str, password: &str) -> Racer<'e> {
    Racer::reading(
        env.cli([
            "reset",
            "confirm",
            "--user",
            user,
            "--code",
            code,
            "--password-stdin",
        ]),
        format!("{password}\n"),
    )
}

fn login<'e>(env: &'e Env, user: &str, password: &str) -> Racer<'e> {
    Racer::reading(
        env.cli(["login", "--user", user, "--password-stdin"]),
        format!("{password}\n"),
    )
}

fn request<'e>(env: &'e Env, nit: &str, email: &str) -> Racer<'e> {
    Racer::gated(env.cli(["--json", "reset", "request", "--nit", nit, "--email", email]))
}

/// A code that is certainly not `code`.
fn wrong_code(code: &str) -> &'static str {
    if code == "zzzzz" { "yyyyy" } else { "zzzzz" }
}

/// How many audit rows of `event` carry `detail`.
fn audit_details(env: &Env, event: &str, detail: &str) -> usize {
    env.audit(&["--event", event])
        .iter()
        .filter(|e| e["detail"] == detail)
        .count()
}

fn twenty_parallel_confirms_of_the_right_code_exactly_one_wins(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let passwords: Vec<String> = (0..20)
        .map(|i| format!("{STRONG} numero {i} de veinte"))
        .collect();

    let runs = race(
        passwords
            .iter()
            .map(|pw| confirm(env, NIT, &code, pw))
            .collect(),
    );

    let winners: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].code == 0).collect();
    assert_eq!(winners.len(), 1, "exactly one success");
    let winner = winners[0];
    runs[winner].stdout_has("Su contraseña ha sido actualizada.");
    for (i, r) in runs.iter().enumerate() {
        if i != winner {
            refused(r, CONFIRM_REFUSED);
        }
    }

    // The code is spent once, the password changed once: the winner's.
    let codes = env.codes();
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0]["state"], "used");
    let attempts = codes[0]["attempts"].as_i64().unwrap();
    assert!((1..=5).contains(&attempts), "attempts {attempts}");
    assert_eq!(env.audit_count("reset.confirm", Some("ok")), 1);
    assert_eq!(
        env.audit_count("reset.confirm", None),
        20,
        "every try audited"
    );
    // Every loser met a code already spent or dead; none was a wrong guess.
    assert_eq!(audit_details(env, "reset.confirm", "wrong_code"), 0);
    let acc = env.account(NIT);
    assert!(acc["password_changed_at"].is_string(), "{acc}");
    assert_eq!(acc["failed_confirmations"], 0, "the success cleared them");
    assert_eq!(acc["pending_codes"], 0);
    let kinds: Vec<Value> = env.queue().iter().map(|m| m["kind"].clone()).collect();
    assert_eq!(kinds, ["password_changed", "reset_code"], "one notice");
    assert_eq!(env.mails().len(), 2);
    env.login("cliente", NIT, &passwords[winner]).ok();
    let loser = (winner + 1) % passwords.len();
    env.login_refused("cliente", NIT, &passwords[loser]);
}

fn thirty_parallel_requests_issue_one_code_and_one_mail(env: &mut Env) {
    env.add_cliente();

    let runs = race((0..30).map(|_| request(env, NIT, EMAIL)).collect());

    for r in &runs {
        no_failure(r);
        r.ok();
        assert_eq!(
            (r.code, &r.stdout, &r.stderr),
            (runs[0].code, &runs[0].stdout, &runs[0].stderr),
            "every answer is the same"
        );
    }
    assert_eq!(runs[0].json()["status"], "sent");

    // All inside the same 60 s: one code, one mail.
    let codes = env.codes();
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(codes[0]["state"], "pending");
    let queue = env.queue();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0]["kind"], "reset_code");
    assert_eq!(queue[0]["state"], "sent");
    assert_eq!(env.mails().len(), 1);
    assert_eq!(env.account(NIT)["requests_last_24h"], 1);
    assert_eq!(env.audit_count("reset.request", None), 30);
    assert_eq!(env.audit_count("reset.request", Some("ok")), 1);
    assert_eq!(audit_details(env, "reset.request", "issued"), 1);
    assert_eq!(audit_details(env, "reset.request", "throttled"), 29);
    // The one code mailed is the live one.
    env.confirm(NIT, &env.last_code(), STRONG).ok();
}

fn thirty_parallel_wrong_logins_check_the_password_exactly_five_times(env: &mut Env) {
    env.add_cliente_with_password();

    let runs = race(
        (0..30)
            .map(|_| login(env, NIT, "frase equivocada de verdad"))
            .collect(),
    );

    for r in &runs {
        refused(r, LOGIN_REFUSED);
    }
    // The attempt is counted before the password is checked: five checks,
    // then the lock answers for the other twenty-five.
    assert_eq!(audit_details(env, "login", "wrong_password"), 5);
    assert_eq!(audit_details(env, "login", "locked"), 25);
    assert_eq!(env.audit_count("login", None), 30);
    let acc = env.account(NIT);
    assert_eq!(acc["failed_logins"], 5, "{acc}");
    // Locked 15 minutes from T0 (18:46:38 UTC).
    assert_eq!(acc["login_locked_until"], "2026-02-24T19:01:38Z");
    // Even the right password waits for the end of the lock.
    env.login_refused("cliente", NIT, STRONG);
    env.advance(15 * 60);
    env.login("cliente", NIT, STRONG).ok();
}

/// The accounts of the mixed run, each the target of one kind of operation.
const C_WRONG: (&str, &str) = (NIT, EMAIL); // wrong confirmations
const S_RIGHT: (&str, &str) = ("800003122", "s@example.co"); // the right code
const L_LOGIN: (&str, &str) = ("830015428", "l@example.co"); // right logins, user show
const W_LOGIN: (&str, &str) = ("890900841", "w@example.co"); // wrong logins
const R_REQUEST: (&str, &str) = ("900206480", "r@example.co"); // requests

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Request,
    ConfirmWrong,
    ConfirmRight,
    Login,
    LoginWrong,
    Show,
    Purge,
}

/// One worker's round of ten; each worker starts at another point of it.
const ROUND: [Op; 10] = [
    Op::Request,
    Op::ConfirmWrong,
    Op::Login,
    Op::Show,
    Op::LoginWrong,
    Op::ConfirmRight,
    Op::Request,
    Op::Login,
    Op::Purge,
    Op::Show,
];

fn four_processes_doing_a_thousand_mixed_operations_lose_nothing(env: &mut Env) {
    const WORKERS: usize = 4;
    const PER_WORKER: usize = 250;
    env.add_user("cliente", C_WRONG.0, C_WRONG.1, &[]).ok();
    env.add_user("cliente", S_RIGHT.0, S_RIGHT.1, &[]).ok();
    env.add_user("cliente", L_LOGIN.0, L_LOGIN.1, &["--password-stdin"])
        .ok();
    env.add_user("cliente", W_LOGIN.0, W_LOGIN.1, &["--password-stdin"])
        .ok();
    env.add_user("cliente", R_REQUEST.0, R_REQUEST.1, &[]).ok();
    env.request(C_WRONG.0, C_WRONG.1).ok();
    let wrong = wrong_code(&env.last_code());
    env.request(S_RIGHT.0, S_RIGHT.1).ok();
    let right = env.last_code();

    let env_ref: &Env = env;
    let gate = Barrier::new(WORKERS);
    let results: Vec<Vec<(Op, Run)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (gate, env, right) = (&gate, env_ref, &right);
                scope.spawn(move || {
                    gate.wait();
                    (0..PER_WORKER)
                        .map(|i| {
                            let op = ROUND[(i + 3 * w) % ROUND.len()];
                            let racer = match op {
                                Op::Request => request(env, R_REQUEST.0, R_REQUEST.1),
                                Op::ConfirmWrong => confirm(env, C_WRONG.0, wrong, STRONG),
                                Op::ConfirmRight => confirm(env, S_RIGHT.0, right, STRONG2),
                                Op::Login => login(env, L_LOGIN.0, STRONG),
                                Op::LoginWrong => {
                                    login(env, W_LOGIN.0, "frase equivocada de verdad")
                                }
                                Op::Show => {
                                    Racer::gated(env.cli(["--json", "user", "show", L_LOGIN.0]))
                                }
                                Op::Purge => Racer::gated(env.cli(["--json", "codes", "purge"])),
                            };
                            (op, racer.run())
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let runs: Vec<&(Op, Run)> = results.iter().flatten().collect();
    assert_eq!(runs.len(), 1000);
    let count = |op: Op| runs.iter().filter(|(o, _)| *o == op).count();

    // Every answer is the one the operation always gives.
    let (mut confirmed, mut purged_codes, mut purged_mails) = (0, 0, 0);
    for (op, r) in &runs {
        no_failure(r);
        match op {
            Op::Request => {
                assert_eq!(r.ok().json()["status"], "sent");
            }
            Op::ConfirmWrong => refused(r, CONFIRM_REFUSED),
            Op::ConfirmRight if r.code == 0 => confirmed += 1,
            Op::ConfirmRight => refused(r, CONFIRM_REFUSED),
            Op::Login => {
                r.ok().stdout_has("Sesión iniciada");
            }
            Op::LoginWrong => refused(r, LOGIN_REFUSED),
            Op::Show => assert_eq!(r.ok().json()["nit"], L_LOGIN.0),
            Op::Purge => {
                let v = r.ok().json();
                purged_codes += v["codes"].as_i64().unwrap();
                purged_mails += v["mails"].as_i64().unwrap();
            }
        }
    }
    assert_eq!(confirmed, 1, "one success for one right code");

    // No lost update on any account.
    let c = env.account(C_WRONG.0);
    assert_eq!(
        (&c["failed_confirmations"], &c["pending_codes"]),
        (&Value::from(5), &Value::from(0)),
        "five wrong tries killed the code; later ones counted nothing: {c}"
    );
    let s = env.account(S_RIGHT.0);
    assert!(s["password_changed_at"].is_string(), "{s}");
    assert_eq!(s["failed_confirmations"], 0, "{s}");
    let l = env.account(L_LOGIN.0);
    assert_eq!(
        (&l["failed_logins"], &l["login_locked_until"]),
        (&Value::from(0), &Value::Null),
        "{l}"
    );
    assert!(l["last_login_at"].is_string(), "{l}");
    let w = env.account(W_LOGIN.0);
    assert_eq!(w["failed_logins"], 5, "{w}");
    assert_eq!(w["login_locked_until"], "2026-02-24T19:01:38Z");
    let r = env.account(R_REQUEST.0);
    assert_eq!(
        (&r["requests_last_24h"], &r["pending_codes"]),
        (&Value::from(1), &Value::from(1)),
        "all requests in the same minute: one code: {r}"
    );

    // Every operation is in the audit log, once.
    assert_eq!(
        env.audit_count("reset.request", None),
        count(Op::Request) + 2
    );
    assert_eq!(env.audit_count("reset.request", Some("ok")), 3);
    assert_eq!(
        env.audit_count("reset.confirm", None),
        count(Op::ConfirmWrong) + count(Op::ConfirmRight)
    );
    assert_eq!(env.audit_count("reset.confirm", Some("ok")), 1);
    assert_eq!(audit_details(env, "reset.confirm", "wrong_code"), 5);
    assert_eq!(
        env.audit_count("login", None),
        count(Op::Login) + count(Op::LoginWrong)
    );
    assert_eq!(env.audit_count("login", Some("ok")), count(Op::Login));
    assert_eq!(audit_details(env, "login", "wrong_password"), 5);
    assert_eq!(
        audit_details(env, "login", "locked"),
        count(Op::LoginWrong) - 5
    );
    assert_eq!(env.audit_count("codes.purge", None), count(Op::Purge));

    // One last purge: every code and message that ended was purged exactly
    // once, by one purge or another (C's exhausted code and S's used one
    // with their mails, and S's "password changed" notice).
    let last = env.cli(["--json", "codes", "purge"]).ok().json();
    purged_codes += last["codes"].as_i64().unwrap();
    purged_mails += last["mails"].as_i64().unwrap();
    assert_eq!((purged_codes, purged_mails), (2, 3));
    let codes = env.codes();
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(
        (&codes[0]["nit"], &codes[0]["state"]),
        (&Value::from(R_REQUEST.0), &Value::from("pending"))
    );
    let queue = env.queue();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0]["id"], codes[0]["id"], "R's code's own message");
    // The outbox: C's, S's and R's codes, and S's notice.
    let subjects: Vec<String> = env.mails().into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert_eq!(
        subjects
            .iter()
            .filter(|s| *s == "Su contraseña ha sido actualizada")
            .count(),
        1
    );
    let status = env.status();
    assert_eq!(
        (
            &status["accounts"],
            &status["codes_pending"],
            &status["mail_queued"]
        ),
        (&Value::from(5), &Value::from(1), &Value::from(0))
    );
    assert_eq!(status["audit"], env.audit(&[]).len());
    // And everyone can still do what they could.
    env.login("cliente", S_RIGHT.0, STRONG2).ok();
    env.login("cliente", L_LOGIN.0, STRONG).ok();
}

fn six_processes_starting_on_an_empty_database_migrate_it_once(env: &mut Env) {
    // Nothing has run yet: a fresh PostgreSQL database, or no SQLite file.
    if env.engine == Engine::Sqlite {
        assert!(!env.db_path.exists());
    }

    // Six agents adding an account each: the commands that make a SQLite
    // file (any command sets up a PostgreSQL database's tables).
    let runs = race(
        (0..6)
            .map(|i| {
                let nit = format!("80000312{i}");
                let email = format!("c{i}@example.co");
                Racer::gated(env.cli([
                    "--json",
                    "user",
                    "add",
                    "--nit",
                    nit.as_str(),
                    "--email",
                    email.as_str(),
                    "--no-password",
                ]))
            })
            .collect(),
    );

    for r in &runs {
        no_failure(r);
        assert_eq!(r.ok().json()["status"], "created");
    }
    let s = env.status();
    assert_eq!(s["schema_version"], 5, "{s}");
    assert_eq!(s["accounts"], 6, "{s}");
    match env.engine {
        Engine::Sqlite => {
            let conn = env.db();
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(version, 5);
            let tables: Vec<String> = conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                tables,
                ["accounts", "audit", "codes", "counters", "notices"]
            );
        }
        Engine::Postgres => {
            let mut c = ::postgres::Client::connect(&env.db, ::postgres::NoTls).unwrap();
            let versions: Vec<i64> = c
                .query("SELECT version FROM recupera_schema ORDER BY 1", &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(versions, [1, 2, 3, 4, 5], "each step applied once");
        }
    }
    // The schema works.
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    env.confirm(NIT, &env.last_code(), STRONG).ok();
    assert_eq!(env.status()["accounts"], 7);
}

/// Several `db copy` into one empty PostgreSQL database at once: the
/// target is claimed for the whole copy, so one copies and each other one
/// then finds it not empty (65), never a raw duplicate-key error (74).
#[test]
fn parallel_copies_into_one_database_one_copies_the_others_find_it_taken() {
    let Some(url) = recupera::testing::fresh_pg_url() else {
        return;
    };
    let env = Env::sqlite();
    for i in 0..30 {
        env.add_user(
            "cliente",
            &format!("80000312{i:02}"),
            &format!("c{i}@example.co"),
            &[],
        )
        .ok();
    }
    let runs = race(
        (0..5)
            .map(|_| {
                Racer::gated(
                    env.cli(["db", "copy", "--to", url.as_str()])
                        .env("RECUPERA_BUSY_TIMEOUT_MS", "60000"),
                )
            })
            .collect(),
    );
    let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    for r in runs.iter().filter(|r| r.code != 0) {
        assert_eq!(r.code, 65, "{}", r.stderr);
        assert!(!r.stderr.contains("duplicate key"), "{}", r.stderr);
    }
    let target = env
        .cli(["--json", "db", "status"])
        .env("RECUPERA_DB", &url)
        .ok()
        .json();
    assert_eq!(target["accounts"], 30);
}
