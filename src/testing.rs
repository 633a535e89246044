//! Test support (feature `test-support`, on only in the test suite's
//! builds): a throwaway PostgreSQL server for the tests that run on both
//! engines, and a fresh database per test.
//!
//! Where the server comes from:
//! - `RECUPERA_TEST_PG_URL`, when set (`.ci/run` and `scripts/test-pg.sh`
//!   export it): a server whose user may `CREATE DATABASE`;
//! - else, when PostgreSQL's binaries are installed (`initdb` on `PATH` or
//!   under `/usr/lib/postgresql/*/bin`), a cluster started here in a
//!   temporary folder, listening only on a Unix socket in that folder,
//!   stopped and removed by a watchdog process when the test binary exits;
//! - else none: the PostgreSQL half of the suite does not run, and says so
//!   on the terminal (not in captured test output). With
//!   `RECUPERA_TEST_PG=required` (CI) a missing server fails those tests.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server, or why there is none.
struct Server {
    /// `postgresql:///{db}?host=…&user=…` with `{db}` to fill in.
    url_template: Result<String, String>,
    /// Keeps the watchdog's stdin open: closing it (at exit) stops the
    /// cluster.
    _watchdog: Option<std::process::ChildStdin>,
}

static SERVER: OnceLock<std::sync::Mutex<Server>> = OnceLock::new();
static WARNED: std::sync::Once = std::sync::Once::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// True when the PostgreSQL tests must run (CI): a missing server fails
/// them instead of skipping them.
pub fn pg_required() -> bool {
    std::env::var("RECUPERA_TEST_PG").is_ok_and(|v| v == "required")
}

fn find_bin(name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root
/// (initdb refuses root).
/// `bin` run as the postgres user when we are root, without libpq's
/// variables: initdb, pg_ctl and the server read `PGPORT` and the like
/// from a developer's environment (an exported `PGPORT` moved the server's
/// socket, and a bad one failed `initdb`).
fn pg_command(bin: &Path) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    without_pg_vars(&mut c);
    c
}

fn without_pg_vars(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("PG")) {
            c.env_remove(k);
        }
    }
}

fn start_cluster() -> Result<(String, std::process::ChildStdin), String> {
    let initdb = find_bin("initdb").ok_or("PostgreSQL is not installed (no initdb)")?;
    let pg_ctl = find_bin("pg_ctl").ok_or("PostgreSQL is not installed (no pg_ctl)")?;
    let dir = tempfile::Builder::new()
        .prefix("recupera-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    if is_root() {
        let ok = Command::new("chown")
            .arg("postgres")
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?
            .success();
        if !ok {
            return Err("cannot chown the cluster folder to postgres".into());
        }
    }
    let data = dir.join("data");
    let out = pg_command(&initdb)
        .arg("-D")
        .arg(&data)
        .args(["-U", "recupera", "--auth=trust", "--no-sync", "-E", "UTF8"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The port is named on both sides (here and in the URL below), so a
    // developer's exported PGPORT moves neither the server nor the tests.
    let opts = format!(
        "-c listen_addresses='' -k {} -c port=5432 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    let out = pg_command(&pg_ctl)
        .arg("-D")
        .arg(&data)
        .args(["-w", "-o", &opts, "-l"])
        .arg(dir.join("log"))
        .arg("start")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The watchdog waits for our end of its stdin to close (this process
    // exiting, however it exits), then stops the cluster and removes it.
    let stop = if is_root() {
        format!(
            "runuser -u postgres -- {} -D {} stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "{} -D {} stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "cat >/dev/null; {stop} >/dev/null 2>&1; rm -rf {}",
        dir.display()
    );
    let mut watchdog = Command::new("sh");
    without_pg_vars(&mut watchdog);
    let mut child = watchdog
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdin = child.stdin.take().ok_or("no watchdog stdin")?;
    Ok((
        format!(
            "postgresql:///{{db}}?host={}&port=5432&user=recupera",
            dir.display()
        ),
        stdin,
    ))
}

fn server() -> &'static std::sync::Mutex<Server> {
    SERVER.get_or_init(|| {
        let s = match std::env::var("RECUPERA_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => Server {
                url_template: template_from(&url),
                _watchdog: None,
            },
            _ => match start_cluster() {
                Ok((url, w)) => Server {
                    url_template: Ok(url),
                    _watchdog: Some(w),
                },
                Err(why) => Server {
                    url_template: Err(why),
                    _watchdog: None,
                },
            },
        };
        std::sync::Mutex::new(s)
    })
}

/// Turns a server URL into a template with the database name as `{db}`.
fn template_from(url: &str) -> Result<String, String> {
    let mut u = url::Url::parse(url).map_err(|e| format!("RECUPERA_TEST_PG_URL: {e}"))?;
    u.set_path("/{db}");
    Ok(u.to_string().replace("%7Bdb%7D", "{db}"))
}

/// Says once, on the terminal itself (test output capture does not see a
/// direct write to stderr), that the PostgreSQL half did not run.
fn warn_skipped(why: &str) {
    WARNED.call_once(|| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "\n*** recupera: the PostgreSQL half of the test suite did NOT run: {why}.\n\
             *** Install PostgreSQL (apt-get install postgresql) or set RECUPERA_TEST_PG_URL;\n\
             *** scripts/test-pg.sh starts a throwaway server. CI sets RECUPERA_TEST_PG=required.\n"
        );
    });
}

/// A new, empty database on the test server, as a URL for `--db`; `None`
/// when there is no server (after saying so), unless PostgreSQL is
/// required, which panics with the reason.
pub fn fresh_pg_url() -> Option<String> {
    let template = {
        let guard = server().lock().unwrap_or_else(|e| e.into_inner());
        guard.url_template.clone()
    };
    let template = match template {
        Ok(t) => t,
        Err(why) => {
            if pg_required() {
                panic!("PostgreSQL is required (RECUPERA_TEST_PG=required) but: {why}");
            }
            warn_skipped(&why);
            return None;
        }
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let admin = template.replace("{db}", "postgres");
    let created = (|| -> Result<(), String> {
        let mut c =
            postgres::Client::connect(&admin, postgres::NoTls).map_err(|e| e.to_string())?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| e.to_string())
    })();
    if let Err(e) = created {
        panic!("cannot create a test database on {admin}: {e}");
    }
    Some(template.replace("{db}", &name))
}
