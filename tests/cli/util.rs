//! The test harness: every test gets its own database (a SQLite file in a
//! temporary folder, or a fresh PostgreSQL database on the test server),
//! its own outbox, an environment scrubbed of everything the program reads,
//! and a clock it sets by hand (`RECUPERA_TEST_NOW`, honoured only by the
//! test build). State is read back through the CLI's own `--json`
//! documents, so one test body runs on both engines; raw SQL stays in the
//! engine-specific tests. When a test fails, its folder is kept and its
//! path printed.
//!
//! `engines!(a, b, …)` instantiates each `fn a(env: &mut Env)` once per
//! engine: `cargo test` lists `file::sqlite::a` and `file::postgres::a`.

#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_recupera");

/// 2026-02-24 18:46:38 UTC (13:46:38 in Bogotá), an arbitrary fixed start.
pub const T0: i64 = 1_771_958_798;

pub const NIT: &str = "900102030";
pub const EMAIL: &str = "ana.gomez@example.co";
pub const STRONG: &str = "caballo tornillo grapa verde";
pub const STRONG2: &str = "luz mesa trombón cactus azul";

/// The one refusal of `reset confirm`, and of `login`.
pub const CONFIRM_REFUSED: &str = "No se pudo actualizar la contraseña";
pub const LOGIN_REFUSED: &str = "Usuario o contraseña incorrectos.";

/// Instantiates each listed `fn name(env: &mut Env)` once per engine.
/// Attributes written before a name apply to both instances:
/// `engines!(a, #[ignore = "BUG: …"] b)`.
#[macro_export]
macro_rules! engines {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        mod sqlite {
            $( $(#[$meta])* #[test] fn $name() {
                let mut env = $crate::util::Env::new($crate::util::Engine::Sqlite).unwrap();
                super::$name(&mut env)
            } )*
        }
        mod postgres {
            $( $(#[$meta])* #[test] fn $name() {
                if let Some(mut env) = $crate::util::Env::new($crate::util::Engine::Postgres) {
                    super::$name(&mut env)
                }
            } )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct Env {
    dir: Option<tempfile::TempDir>,
    pub engine: Engine,
    pub root: PathBuf,
    /// `--db`: a file path, or a PostgreSQL URL.
    pub db: String,
    /// The SQLite file (engine-specific tests only).
    pub db_path: PathBuf,
    pub outbox: PathBuf,
    pub now: i64,
    pub extra: Vec<(String, String)>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "test failed; its folder is kept at {} (database: {})",
                kept.display(),
                self.db
            );
        }
    }
}

/// Every variable the program reads, removed from the child's environment
/// (the developer's own settings cannot change a result, and no stray file
/// lands in their data folder).
fn scrubbed(k: &str) -> bool {
    k.starts_with("RECUPERA_")
        || k.starts_with("LC_")
        || k.starts_with("XDG_")
        || k.starts_with("PG")
        || matches!(
            k,
            "LANG" | "LANGUAGE" | "NO_COLOR" | "HOME" | "USER" | "LOGNAME" | "TERM" | "COLUMNS"
        )
}

impl Env {
    /// A fresh environment on `engine`; `None` when PostgreSQL is not
    /// available (the harness has said so; with RECUPERA_TEST_PG=required
    /// it panics instead).
    pub fn new(engine: Engine) -> Option<Env> {
        let dir = tempfile::Builder::new()
            .prefix("recupera-test-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        let db_path = root.join("data").join("recupera.db");
        let db = match engine {
            Engine::Sqlite => db_path.display().to_string(),
            Engine::Postgres => recupera::testing::fresh_pg_url()?,
        };
        Some(Env {
            engine,
            db,
            db_path,
            outbox: root.join("outbox"),
            root,
            dir: Some(dir),
            now: T0,
            extra: Vec::new(),
        })
    }

    /// SQLite only (engine-specific tests).
    pub fn sqlite() -> Env {
        Env::new(Engine::Sqlite).unwrap()
    }

    pub fn advance(&mut self, secs: i64) {
        self.now += secs;
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.extra.retain(|(key, _)| key != k);
        self.extra.push((k.to_string(), v.to_string()));
    }

    /// The binary with a scrubbed environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str()
                && scrubbed(k)
            {
                c.env_remove(k);
            }
        }
        c.env("RECUPERA_DB", &self.db)
            .env("RECUPERA_OUTBOX", &self.outbox)
            .env("RECUPERA_TEST_NOW", self.now.to_string())
            .env("RECUPERA_AGENT", "test-agent")
            // No timing floor in tests (one test checks it on purpose).
            .env("RECUPERA_REQUEST_MIN_MS", "0")
            .env("LANG", "es_CO.UTF-8")
            .env("HOME", &self.root)
            .args(args);
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    /// An invocation to build: `env.cli(["user", "show", NIT]).json().ok()`.
    pub fn cli<'e, I, S>(&'e self, args: I) -> Cmd<'e>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Cmd {
            env: self,
            args: args.into_iter().map(|s| s.as_ref().to_string()).collect(),
            stdin: None,
            vars: Vec::new(),
        }
    }

    /// Runs with `stdin` as standard input (empty if `None`), with a
    /// generous deadline so a hang fails instead of blocking the suite.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        run_command(self.command(args), stdin)
    }

    // ----- the manual's steps, as a support agent or a script types them

    /// `user add` (without a password unless `--password-stdin` is among
    /// `extra`, whose stdin then carries STRONG).
    pub fn add_user(&self, kind: &str, nit: &str, email: &str, extra: &[&str]) -> Run {
        let mut c = self
            .cli([
                "user", "add", "--type", kind, "--nit", nit, "--email", email,
            ])
            .args(extra);
        if extra.contains(&"--password-stdin") {
            c = c.stdin(&format!("{STRONG}\n"));
        } else {
            c = c.arg("--no-password");
        }
        c.run()
    }

    /// A database with nothing in it but the audit row of the import that
    /// made it: an import of a file with only its header, the way a desk
    /// starts one without accounts (on SQLite only `user add` and `user
    /// import` make the file).
    pub fn empty_database(&self) {
        let header = self.root.join("empty.csv");
        std::fs::write(&header, "nit,email\n").unwrap();
        self.cli(["user", "import", header.to_str().unwrap()]).ok();
    }

    /// `add_cliente`'s command, for the database at `db` (another file
    /// than the environment's).
    pub fn add_cliente_in(&self, db: &str) -> Cmd<'_> {
        self.cli([
            "--db",
            db,
            "user",
            "add",
            "--nit",
            NIT,
            "--email",
            EMAIL,
            "--no-password",
        ])
    }

    pub fn add_cliente(&self) {
        self.add_user("cliente", NIT, EMAIL, &[]).ok();
    }

    /// A cliente with STRONG as its password.
    pub fn add_cliente_with_password(&self) {
        self.add_user("cliente", NIT, EMAIL, &["--password-stdin"])
            .ok();
    }

    /// Step 02: `reset request --nit … --email …` (type cliente).
    pub fn request(&self, nit: &str, email: &str) -> Run {
        self.cli(["reset", "request", "--nit", nit, "--email", email])
            .run()
    }

    /// Step 02 for an account of type `kind`.
    pub fn request_as(&self, kind: &str, nit: &str, email: &str) -> Run {
        self.cli([
            "reset", "request", "--type", kind, "--nit", nit, "--email", email,
        ])
        .run()
    }

    /// Step 05: `reset confirm --user … --code …` with the new password on
    /// stdin.
    pub fn confirm(&self, user: &str, code: &str, password: &str) -> Run {
        self.confirm_cmd(user, code, password).run()
    }

    /// [`Env::confirm`] still to be run (to add variables or flags).
    pub fn confirm_cmd(&self, user: &str, code: &str, password: &str) -> Cmd<'_> {
        self.cli([
            "reset",
            "confirm",
            "--user",
            user,
            "--code",
            code,
            "--password-stdin",
        ])
        .stdin(&format!("{password}\n"))
    }

    /// Step 07: `login --type … --user …` with the password on stdin.
    pub fn login(&self, kind: &str, user: &str, password: &str) -> Run {
        self.cli(["login", "--type", kind, "--user", user, "--password-stdin"])
            .stdin(&format!("{password}\n"))
            .run()
    }

    /// A confirmation that must be refused with the one uniform message.
    pub fn confirm_refused(&self, user: &str, code: &str, password: &str) -> Run {
        let r = self.confirm(user, code, password);
        r.code(1).stderr_has(CONFIRM_REFUSED);
        r
    }

    /// A login that must be refused with the one uniform message.
    pub fn login_refused(&self, kind: &str, user: &str, password: &str) -> Run {
        let r = self.login(kind, user, password);
        r.code(1).stderr_has(LOGIN_REFUSED);
        r
    }

    // ----- state, through the CLI's own JSON

    /// `user show IDENT --json`.
    pub fn account(&self, ident: &str) -> Value {
        self.cli(["--json", "user", "show", ident]).ok().json()
    }

    pub fn account_of(&self, kind: &str, ident: &str) -> Value {
        self.cli(["--json", "user", "show", ident, "--type", kind])
            .ok()
            .json()
    }

    /// `codes list --json`, newest first.
    pub fn codes(&self) -> Vec<Value> {
        array(self.cli(["--json", "codes", "list"]).ok().json())
    }

    /// How many stored codes are in `state` (as `codes list` shows it).
    pub fn codes_in(&self, state: &str) -> usize {
        self.codes().iter().filter(|c| c["state"] == state).count()
    }

    /// `mail list --json`, newest first.
    pub fn queue(&self) -> Vec<Value> {
        array(self.cli(["--json", "mail", "list"]).ok().json())
    }

    /// `audit --json` with extra filters.
    pub fn audit(&self, filters: &[&str]) -> Vec<Value> {
        array(self.cli(["--json", "audit"]).args(filters).ok().json())
    }

    /// The detail of each audit row of `event`, newest first.
    pub fn audit_details(&self, event: &str) -> Vec<String> {
        self.audit(&["--event", event])
            .iter()
            .map(|e| e["detail"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub fn audit_count(&self, event: &str, outcome: Option<&str>) -> usize {
        self.audit(&["--event", event])
            .iter()
            .filter(|e| e["event"] == event && outcome.is_none_or(|o| e["outcome"] == o))
            .count()
    }

    /// `db status --json`.
    pub fn status(&self) -> Value {
        self.cli(["--json", "db", "status"]).ok().json()
    }

    /// Everything the CLI can show, for "nothing changed" checks on any
    /// engine.
    pub fn state(&self) -> String {
        // No SQLite file yet is a state of its own: only `user add` and
        // `user import` make one, and every other command refuses (74).
        if self.engine == Engine::Sqlite && !self.db_path.exists() {
            return "(no database file)".into();
        }
        [
            vec!["--json", "user", "list"],
            vec!["--json", "codes", "list"],
            vec!["--json", "mail", "list"],
            vec!["--json", "audit"],
            vec!["--json", "db", "status"],
        ]
        .iter()
        .map(|a| self.cli(a).ok().stdout.clone())
        .collect::<Vec<_>>()
        .join("\n")
    }

    // ----- mail

    pub fn mails(&self) -> Vec<Mail> {
        read_mails(&self.outbox)
    }

    /// The code in the newest reset message of the outbox.
    pub fn last_code(&self) -> String {
        let mails = self.mails();
        let m = mails
            .iter()
            .rev()
            .find(|m| m.code.is_some())
            .unwrap_or_else(|| panic!("no reset mail in {}", self.outbox.display()));
        m.code.clone().unwrap()
    }

    // ----- SQLite only

    pub fn db(&self) -> rusqlite::Connection {
        assert_eq!(self.engine, Engine::Sqlite, "raw SQL is for SQLite tests");
        rusqlite::Connection::open(&self.db_path).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Every row of every table of the SQLite file, in a fixed order:
    /// "the file is unchanged" compares these, not bytes (a WAL checkpoint
    /// moves bytes without changing content).
    pub fn snapshot(&self) -> String {
        if !self.db_path.exists() {
            return "<no database>".into();
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let mut out = format!("user_version={version}\n");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for t in tables {
            out.push_str(&format!("## {t}\n"));
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
            let n = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    let cells: Vec<String> = (0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect();
                    Ok(cells.join("|"))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            for row in rows {
                out.push_str(&row);
                out.push('\n');
            }
        }
        out
    }

    /// A plain-text dump of the whole database, whatever the engine
    /// (`sqlite3 .dump`-like for SQLite, every row of every table for
    /// PostgreSQL), for "no personal data left" checks.
    pub fn dump(&self) -> String {
        match self.engine {
            Engine::Sqlite => {
                let mut s = self.snapshot();
                // And the raw bytes of the files, as a stranger would read them.
                for suffix in ["", "-wal"] {
                    let mut p = self.db_path.as_os_str().to_owned();
                    p.push(suffix);
                    if let Ok(b) = std::fs::read(PathBuf::from(p)) {
                        s.push_str(&String::from_utf8_lossy(&b));
                    }
                }
                s
            }
            Engine::Postgres => {
                let mut c = postgres::Client::connect(&self.db, postgres::NoTls).unwrap();
                let tables: Vec<String> = c
                    .query(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                        &[],
                    )
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut out = String::new();
                for t in tables {
                    for r in c
                        .query(&format!("SELECT CAST(x AS TEXT) FROM \"{t}\" x"), &[])
                        .unwrap()
                    {
                        out.push_str(&r.get::<_, String>(0));
                        out.push('\n');
                    }
                }
                out
            }
        }
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => panic!("expected a JSON array, got {other}"),
    }
}

/// One invocation being built.
pub struct Cmd<'e> {
    env: &'e Env,
    args: Vec<String>,
    stdin: Option<String>,
    vars: Vec<(String, String)>,
}

impl Cmd<'_> {
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub fn args<S: AsRef<str>>(mut self, a: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(a.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// `--json` (a global flag: anywhere on the line).
    pub fn json(self) -> Self {
        self.arg("--json")
    }

    pub fn stdin(mut self, s: &str) -> Self {
        self.stdin = Some(s.to_string());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.vars.push((k.to_string(), v.to_string()));
        self
    }

    pub fn command(&self) -> Command {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut c = self.env.command(&args);
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    pub fn run(self) -> Run {
        run_command(self.command(), self.stdin.as_deref())
    }

    pub fn ok(self) -> Run {
        let r = self.run();
        r.ok();
        r
    }

    pub fn expect_exit(self, code: i32) -> Run {
        let r = self.run();
        r.code(code);
        r
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "wrong exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {:?}\nstderr: {}", self.stdout, self.stderr)
        })
    }

    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}: {}",
            self.stderr
        );
        self
    }

    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}: {}",
            self.stdout
        );
        self
    }
}

pub fn run_command(mut c: Command, stdin: Option<&str>) -> Run {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            let _ = input.write_all(s.as_bytes());
        }
        // Dropped here: EOF.
    }
    let out = wait_with_deadline(child, Duration::from_secs(120));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits for a child; a hang (not slowness: the bound is generous) fails
/// the test instead of blocking the suite.
pub fn wait_with_deadline(child: std::process::Child, limit: Duration) -> Output {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let id = child.id();
        s.spawn(move || {
            if rx.recv_timeout(limit).is_err() {
                // SAFETY: kill(2) on our own child's pid.
                unsafe {
                    libc::kill(id as i32, libc::SIGKILL);
                }
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(());
        out
    })
}

/// A message from the outbox, parsed as email.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: PathBuf,
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub date: i64,
    pub text: String,
    pub html: String,
    pub code: Option<String>,
}

pub fn parse_mail(raw: &[u8], file: PathBuf) -> Mail {
    let msg = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parseable email");
    let to = msg
        .to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|x| x.address().map(str::to_string))
        .unwrap_or_default();
    let text = msg.body_text(0).unwrap_or_default().into_owned();
    let html = msg.body_html(0).unwrap_or_default().into_owned();
    let code = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Código: ")
            .or_else(|| l.trim().strip_prefix("Code: "))
            .map(|c| c.trim().to_string())
    });
    Mail {
        file,
        to,
        from,
        subject: msg.subject().unwrap_or_default().to_string(),
        date: msg.date().map(|d| d.to_timestamp()).unwrap_or_default(),
        text,
        html,
        code,
    }
}

/// The outbox's messages in the order they were written: the outbox names
/// its files by the time of writing (never by the file system's mtime,
/// which can tie).
pub fn read_mails(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let raw = std::fs::read(&p).unwrap();
            parse_mail(&raw, p)
        })
        .collect()
}

/// Waits (up to 30 s) for something another process does in the background,
/// such as a mail delivery, polling its observable effect.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
