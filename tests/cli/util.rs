//! A small builder over a temp folder: every test gets its own database and
//! outbox, an environment scrubbed of the user's `RECUPERA_*` settings, and a
//! clock it sets by hand (`RECUPERA_TEST_NOW`, honoured by debug builds).
//! When a test fails, its folder is kept and its path printed.

#![allow(dead_code)]

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

pub struct Env {
    dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub db: PathBuf,
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
            eprintln!("test failed; its folder is kept at {}", kept.display());
        }
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

    pub fn json(&self) -> serde_json::Value {
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

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("recupera-test-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        Env {
            db: root.join("data").join("recupera.db"),
            outbox: root.join("outbox"),
            root,
            dir: Some(dir),
            now: T0,
            extra: Vec::new(),
        }
    }

    pub fn advance(&mut self, secs: i64) {
        self.now += secs;
    }

    /// The binary with a scrubbed environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("RECUPERA_") || k.starts_with("LC_") || k == "LANG" || k == "NO_COLOR"
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

    /// Runs with `stdin` as standard input (empty if `None`), with a
    /// generous deadline so a hang fails instead of blocking the suite.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        run_command(self.command(args), stdin)
    }

    pub fn add_user(&self, kind: &str, nit: &str, email: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "user", "add", "--type", kind, "--nit", nit, "--email", email,
        ];
        args.extend_from_slice(extra);
        if !extra.contains(&"--password-stdin") {
            args.push("--no-password");
        }
        self.run(&args, None)
    }

    pub fn add_cliente(&self) {
        self.add_user("cliente", NIT, EMAIL, &[]).ok();
    }

    pub fn request(&self, nit: &str, email: &str) -> Run {
        self.run(&["reset", "request", "--nit", nit, "--email", email], None)
    }

    pub fn confirm(&self, user: &str, code: &str, password: &str) -> Run {
        self.run(
            &[
                "reset",
                "confirm",
                "--user",
                user,
                "--code",
                code,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        )
    }

    pub fn login(&self, kind: &str, user: &str, password: &str) -> Run {
        self.run(
            &["login", "--type", kind, "--user", user, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
    }

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

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
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
    let out = wait_with_deadline(child, Duration::from_secs(60));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn wait_with_deadline(mut child: std::process::Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A message from the outbox, parsed as email.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: PathBuf,
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub code: Option<String>,
    pub modified: std::time::SystemTime,
}

pub fn parse_mail(raw: &[u8], file: PathBuf, modified: std::time::SystemTime) -> Mail {
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
        text,
        html,
        code,
        modified,
    }
}

pub fn read_mails(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut mails: Vec<Mail> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| {
            let raw = std::fs::read(e.path()).unwrap();
            let modified = e.metadata().unwrap().modified().unwrap();
            parse_mail(&raw, e.path(), modified)
        })
        .collect();
    mails.sort_by_key(|m| m.modified);
    mails
}

impl Env {
    /// Every row of every table, in a fixed order: "the database is
    /// unchanged" compares these, not file bytes (a WAL checkpoint moves
    /// bytes without changing content).
    pub fn snapshot(&self) -> String {
        if !self.db.exists() {
            return "<no database>".into();
        }
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
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
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM \"{t}\" ORDER BY rowid"))
                .unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let cells: Vec<String> = (0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect();
                    Ok(cells.join("|"))
                })
                .unwrap();
            for row in rows {
                out.push_str(&row.unwrap());
                out.push('\n');
            }
        }
        out
    }
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
