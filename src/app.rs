//! The running context every command gets: store, clock, hasher, policy,
//! limits, mailer and the acting agent. Built from the command line and the
//! environment by [`Config::from_cli`]; tests and the demo build one directly.
//!
//! Configuration is validated before the database is opened, so a bad
//! setting (exit 78) never touches the file. The `--db` value becomes a
//! [`Location`] here, the one place the engines are told apart.

use crate::cli::Global;
use crate::clock::{Clock, SystemClock};
use crate::domain::hash::Hasher;
use crate::domain::limits::Limits;
use crate::domain::password::{FLOOR_MIN_LEN, MAX_CHARS, Policy};
use crate::error::{Error, Result};
use crate::i18n::{M, t, tf};
use crate::mail::{self, Mailer, SmtpConfig, Transport};
use crate::store::{Location, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub struct App {
    pub store: Store,
    /// Where the store is (for messages; never holds a password in them).
    pub location: Location,
    pub busy_timeout: Duration,
    pub clock: Arc<dyn Clock>,
    pub hasher: Hasher,
    pub policy: Policy,
    pub limits: Limits,
    pub code_ttl_secs: i64,
    pub mailer: Mailer,
    pub agent: Agent,
    /// `reset request` never answers faster than this (0: no floor).
    pub request_min: Duration,
    /// How to start a background delivery (SMTP only; `None`: inline).
    pub background: Option<Background>,
}

/// What a background `recupera mail deliver` needs: the database and the
/// mail settings, passed in its environment (never its argv). The child's
/// environment is cleared first: it gets exactly these variables.
#[derive(Clone)]
pub struct Background {
    pub env: Vec<(&'static str, std::ffi::OsString)>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| *k).collect();
        f.debug_struct("Background").field("env", &names).finish()
    }
}

/// Everything [`App`] needs except the store, resolved and validated.
pub struct Config {
    pub db: Location,
    pub clock: Arc<dyn Clock>,
    pub hasher: Hasher,
    pub policy: Policy,
    pub code_ttl_secs: i64,
    pub mailer: Mailer,
    pub agent: Agent,
    pub busy_timeout: Duration,
    pub request_min: Duration,
    pub background: Option<Background>,
}

/// `$XDG_DATA_HOME/recupera/recupera.db`, else `~/.local/share/recupera/recupera.db`.
pub fn default_db_path() -> Result<PathBuf> {
    db_path_under(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

/// [`default_db_path`] from the two variables' values: a relative or empty
/// `XDG_DATA_HOME` is ignored (as the XDG specification says).
fn db_path_under(
    xdg_data_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf> {
    if let Some(d) = xdg_data_home.filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        if d.is_absolute() {
            return Ok(d.join("recupera").join("recupera.db"));
        }
    }
    match home.filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h)
            .join(".local")
            .join("share")
            .join("recupera")
            .join("recupera.db")),
        None => Err(Error::Config(t(M::ConfigNoHome).to_string())),
    }
}

/// Who runs the command, as the audit trail names them: `--agent` (or
/// `RECUPERA_AGENT`) when given, otherwise looked up the first time an
/// event is written. A command that writes none (`user show`, a listing)
/// never reads the user database: with no `$USER` (cron, containers) that
/// look-up (nsswitch, `/etc/passwd`, nscd's socket) cost ~0.06 ms of a
/// 1.9 ms `user show` (BENCHMARKS.md, item 19).
pub struct Agent {
    given: Option<String>,
    name: std::sync::OnceLock<String>,
}

impl Agent {
    /// As typed (`--agent`, `RECUPERA_AGENT`), or `None` to ask the
    /// system when first needed.
    pub fn new(given: Option<&str>) -> Agent {
        Agent {
            given: given.map(str::to_string),
            name: std::sync::OnceLock::new(),
        }
    }

    /// The name the audit trail shows: at most 64 characters, control and
    /// invisible characters as visible escapes.
    pub fn name(&self) -> &str {
        self.name
            .get_or_init(|| crate::i18n::visible(&agent_name(self.given.as_deref())))
    }

    /// Whether the name was already worked out (tests: a command that
    /// writes no event never looks it up).
    pub fn resolved(&self) -> bool {
        self.name.get().is_some()
    }
}

/// `--agent`, else `$USER`, else `$LOGNAME`, else the system account of
/// the process's user id, else "?"; 64 characters at most (the caller
/// makes control and invisible characters visible escapes, so the audit
/// log shows what was typed, on one line, without a terminal acting on it).
pub fn agent_name(given: Option<&str>) -> String {
    let named = |s: &str| !s.trim().is_empty();
    // Cron, systemd and containers often set no $USER; the audit trail
    // still says who ran the job: $LOGNAME, else the account of the
    // process's user id.
    let raw = given
        .filter(|s| named(s))
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok().filter(|s| named(s)))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|s| named(s)))
        .or_else(os_user_name)
        .unwrap_or_else(|| "?".to_string());
    raw.chars().take(64).collect()
}

/// The login name of this process's real user id, from the user database
/// (`uid:N` when it has no entry, as in a container run with a bare id).
#[cfg(unix)]
fn os_user_name() -> Option<String> {
    // SAFETY: getuid cannot fail. getpwuid_r writes into `pwd` and `buf`,
    // both owned here and large enough as told; the name is copied out
    // before they go away.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found);
        if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned();
            if !name.trim().is_empty() {
                return Some(name);
            }
        }
        Some(format!("uid:{uid}"))
    }
}

#[cfg(not(unix))]
fn os_user_name() -> Option<String> {
    None
}

/// The clock: the system's, except that a binary built for the test suite
/// (the `test-clock` feature, which only the integration tests' build
/// turns on) accepts `RECUPERA_TEST_NOW` (Unix seconds), so tests move time
/// instead of sleeping. `cargo build` and `cargo install`, debug or
/// release, ignore the variable: whoever sets a user's environment cannot
/// defeat expiry, throttling or lockout with it.
pub fn clock_from_env() -> Arc<dyn Clock> {
    #[cfg(feature = "test-clock")]
    if let Some(now) = std::env::var("RECUPERA_TEST_NOW")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        return Arc::new(crate::clock::ManualClock::new(now));
    }
    Arc::new(SystemClock)
}

fn read_pepper(path: &Path) -> Result<Vec<u8>> {
    let bytes = crate::input::read_small_file(path, 1024 * 1024).map_err(|e| {
        Error::Config(tf(
            M::ConfigPepper,
            &[
                ("path", &path.display()),
                ("err", &crate::i18n::os_error(&e)),
            ],
        ))
    })?;
    if bytes.len() < 16 || bytes.len() > 1024 * 1024 {
        return Err(Error::Config(tf(
            M::ConfigPepperShort,
            &[("path", &path.display())],
        )));
    }
    Ok(bytes)
}

/// A numeric setting from a flag or its environment variable: a value
/// that is not a number in `range` is a configuration error (exit 78).
fn setting<T>(name: &str, raw: &str, range: std::ops::RangeInclusive<T>, msg: M) -> Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    // The setting comes from its flag or its variable: both are named.
    let flag = name
        .trim_start_matches("RECUPERA_")
        .to_lowercase()
        .replace('_', "-");
    let shown = format!("--{flag} ({name})");
    match raw.trim().replace('_', "").parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(Error::Config(match msg {
            M::ConfigNumber => tf(
                M::ConfigNumber,
                &[
                    ("name", &shown),
                    ("value", &crate::i18n::quote(raw)),
                    ("min", range.start()),
                    ("max", range.end()),
                ],
            ),
            other => t(other).to_string(),
        })),
    }
}

/// `RECUPERA_LANG`: `es` or `en`; anything else falls back to the locale
/// (Spanish unless it says English) instead of failing.
pub fn lang_from_env() -> crate::i18n::Lang {
    lang_named(std::env::var("RECUPERA_LANG").ok().as_deref())
        .unwrap_or_else(crate::i18n::lang_from_locale_env)
}

/// `es` or `en`, alone or as a locale's language (`es_CO.UTF-8`, `en-US`;
/// spaces around allowed); anything else names no language.
fn lang_named(v: Option<&str>) -> Option<crate::i18n::Lang> {
    use crate::i18n::Lang;
    let v = v?.trim();
    let language = v.split(['_', '-', '.', '@']).next().unwrap_or(v);
    match language.to_ascii_lowercase().as_str() {
        "en" => Some(Lang::En),
        "es" => Some(Lang::Es),
        _ => None,
    }
}

impl Config {
    /// `on_argv`: which of the secret-bearing settings were typed on the
    /// command line (a password there is refused).
    pub fn from_cli(g: &Global, on_argv: &OnArgv) -> Result<Config> {
        // RECUPERA_LANG is read before the command line (its messages need
        // a language); one that names none is said here, unless --lang
        // overrides it. Empty is unset, as for the locale's variables.
        if g.lang.is_none()
            && let Some(v) = std::env::var_os("RECUPERA_LANG")
        {
            let text = v.to_string_lossy();
            if !text.trim().is_empty() && lang_named(Some(&text)).is_none() {
                return Err(Error::Config(tf(
                    M::EnvLang,
                    &[("value", &crate::i18n::visible(&text))],
                )));
            }
        }
        let code_ttl_hours: i64 = setting(
            "RECUPERA_CODE_TTL_HOURS",
            &g.code_ttl_hours,
            1..=24,
            M::ConfigTtl,
        )?;
        let min_password_length: usize = setting(
            "RECUPERA_MIN_PASSWORD_LENGTH",
            &g.min_password_length,
            FLOOR_MIN_LEN..=MAX_CHARS,
            M::ConfigMinLen,
        )?;
        let smtp_timeout: u64 = setting(
            "RECUPERA_SMTP_TIMEOUT",
            &g.smtp_timeout,
            1..=300,
            M::ConfigNumber,
        )?;
        let busy_timeout_ms: u64 = setting(
            "RECUPERA_BUSY_TIMEOUT_MS",
            &g.busy_timeout_ms,
            0..=3_600_000,
            M::ConfigNumber,
        )?;
        let request_min_ms: u64 = setting(
            "RECUPERA_REQUEST_MIN_MS",
            &g.request_min_ms,
            0..=10_000,
            M::ConfigNumber,
        )?;
        let db = match &g.db {
            Some(p) => Location::parse(p.as_os_str(), on_argv.db, g.db_ca_file.as_deref())?,
            None => Location::Sqlite(default_db_path()?),
        };
        let pepper = g.pepper_file.as_deref().map(read_pepper).transpose()?;
        let from = match &g.mail_from {
            Some(f) => mail::parse_from(f)?,
            None => mail::parse_from(mail::DEFAULT_FROM)?,
        };
        let transport = match g.smtp_url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                let cfg = SmtpConfig::parse(url)?;
                if on_argv.smtp_url && cfg.password.is_some() {
                    return Err(Error::Config(t(M::ConfigSmtpArgv).to_string()));
                }
                let timeout = Duration::from_secs(smtp_timeout);
                Transport::Smtp(Box::new(cfg.transport(timeout, g.smtp_ca_file.as_deref())?))
            }
            None => Transport::Outbox(match &g.outbox {
                Some(o) => o.clone(),
                None => match db.folder() {
                    Some(p) => p.join("outbox"),
                    // A server has no folder beside it: the user's data folder.
                    None => match default_db_path()?.parent() {
                        Some(p) => p.join("outbox"),
                        None => PathBuf::from("outbox"),
                    },
                },
            }),
        };
        let background = g.smtp_url.as_deref().filter(|u| !u.is_empty()).map(|url| {
            let mut env: Vec<(&'static str, std::ffi::OsString)> = vec![
                (
                    "RECUPERA_DB",
                    g.db.clone()
                        .map(PathBuf::into_os_string)
                        .unwrap_or_else(|| db_path_os(&db)),
                ),
                ("RECUPERA_SMTP_URL", url.into()),
                ("RECUPERA_SMTP_TIMEOUT", smtp_timeout.to_string().into()),
                (
                    "RECUPERA_BUSY_TIMEOUT_MS",
                    busy_timeout_ms.to_string().into(),
                ),
            ];
            if let Some(ca) = &g.smtp_ca_file {
                env.push(("RECUPERA_SMTP_CA_FILE", ca.clone().into_os_string()));
            }
            if let Some(from) = &g.mail_from {
                env.push(("RECUPERA_MAIL_FROM", from.into()));
            }
            if let Some(agent) = &g.agent {
                env.push(("RECUPERA_AGENT", agent.into()));
            }
            if let Some(ca) = &g.db_ca_file {
                env.push(("RECUPERA_DB_CA_FILE", ca.clone().into_os_string()));
            }
            // libpq's variables the URL may rely on, and what a TLS stack
            // and the locale need; nothing else of this process's
            // environment reaches the child.
            for k in [
                "PGPASSWORD",
                "PGHOST",
                "PGPORT",
                "PGUSER",
                "PGDATABASE",
                "SSL_CERT_FILE",
                "SSL_CERT_DIR",
                "HOME",
                "USER",
                "PATH",
                "LANG",
                "LC_ALL",
                "TZ",
            ] {
                if let Some(v) = std::env::var_os(k) {
                    env.push((k, v));
                }
            }
            #[cfg(feature = "test-clock")]
            if let Some(v) = std::env::var_os("RECUPERA_TEST_NOW") {
                env.push(("RECUPERA_TEST_NOW", v));
            }
            Background { env }
        });
        let footer = g
            .mail_footer
            .as_deref()
            .map(|f| f.replace(['\r', '\n'], " "))
            .filter(|f| !f.trim().is_empty());
        Ok(Config {
            db,
            clock: clock_from_env(),
            hasher: Hasher::new(pepper),
            policy: Policy {
                min_len: min_password_length,
            },
            code_ttl_secs: code_ttl_hours * 3600,
            mailer: Mailer {
                transport,
                from,
                footer,
            },
            agent: Agent::new(g.agent.as_deref()),
            busy_timeout: Duration::from_millis(busy_timeout_ms),
            request_min: Duration::from_millis(request_min_ms),
            background,
        })
    }

    pub fn open(self) -> Result<App> {
        self.open_with(Opening::Create)
    }

    /// How a SQLite file that does not exist is met: made
    /// ([`Opening::Create`]), refused ([`Store::open_existing`]), or stood
    /// for by an empty database in memory that nothing is written to.
    pub fn open_with(self, how: Opening) -> Result<App> {
        let store = match how {
            Opening::Create => Store::open(&self.db, self.busy_timeout)?,
            Opening::Existing => Store::open_existing(&self.db, self.busy_timeout)?,
            Opening::ExistingOrEmpty if self.db.is_missing_file() => Store::in_memory()?,
            Opening::ExistingOrEmpty => Store::open_existing(&self.db, self.busy_timeout)?,
        };
        Ok(App {
            store,
            location: self.db,
            busy_timeout: self.busy_timeout,
            clock: self.clock,
            hasher: self.hasher,
            policy: self.policy,
            limits: Limits::default(),
            code_ttl_secs: self.code_ttl_secs,
            mailer: self.mailer,
            agent: self.agent,
            request_min: self.request_min,
            background: self.background,
        })
    }
}

/// See [`Config::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// `user add`, `user import`: a new SQLite file is made.
    Create,
    /// Every other command: a SQLite file must exist (74 otherwise).
    Existing,
    /// `user import --dry-run`: checked against an empty database when
    /// there is no file yet, and no file is made.
    ExistingOrEmpty,
}

/// Which settings were typed on the command line rather than taken from
/// the environment: a password in them is refused (argv is visible to
/// every user of the machine).
#[derive(Debug, Clone, Copy, Default)]
pub struct OnArgv {
    pub db: bool,
    pub smtp_url: bool,
    /// `--lang` typed: `user add` then uses it for the account's emails.
    pub lang: bool,
    /// `--agent` typed: on `audit` it filters by agent (the environment's
    /// `RECUPERA_AGENT` does not).
    pub agent: bool,
}

fn db_path_os(db: &Location) -> std::ffi::OsString {
    match db {
        Location::Sqlite(p) => p.clone().into_os_string(),
        Location::Postgres(t) => t.shown().into(),
    }
}

impl App {
    /// An app over a given store with default policy, for tests and the demo.
    pub fn with(store: Store, clock: Arc<dyn Clock>, mailer: Mailer, agent: &str) -> App {
        App {
            store,
            location: Location::Sqlite(PathBuf::from(":memory:")),
            busy_timeout: crate::store::DEFAULT_BUSY_TIMEOUT,
            clock,
            hasher: Hasher::new(None),
            policy: Policy::default(),
            limits: Limits::default(),
            code_ttl_secs: 12 * 3600,
            mailer,
            agent: Agent::new(Some(agent)),
            request_min: Duration::ZERO,
            background: None,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn ttl_hours(&self) -> i64 {
        self.code_ttl_secs / 3600
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration of `recupera ARGS db status`, with the options'
    /// environment variables not read, so a developer's exported
    /// `RECUPERA_OUTBOX`, `RECUPERA_SMTP_URL` or `RECUPERA_REQUEST_MIN_MS`
    /// does not change what is checked. (libpq's `PG*` variables still
    /// fill what a URL leaves out, so the tests' URLs name their port.)
    fn config(args: &[&str], on_argv: OnArgv) -> Result<Config> {
        let mut line = vec!["recupera"];
        line.extend_from_slice(args);
        line.extend(["db", "status"]);
        let matches = <crate::cli::Cli as clap::CommandFactory>::command()
            .mut_args(|a| a.env(None::<&str>))
            .try_get_matches_from(line)
            .unwrap();
        let cli = <crate::cli::Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        Config::from_cli(&cli.global, &on_argv)
    }

    fn config_error(args: &[&str], on_argv: OnArgv) -> String {
        match config(args, on_argv) {
            Err(Error::Config(m) | Error::Store(crate::store::Error::Config(m))) => m,
            Err(e) => panic!("{args:?}: {e:?}"),
            Ok(_) => panic!("{args:?}: accepted"),
        }
    }

    #[test]
    fn a_pepper_holds_16_bytes_to_1_mib() {
        let dir = tempfile::tempdir().unwrap();
        let file = |n: usize| {
            let p = dir.path().join(format!("pepper-{n}"));
            std::fs::write(&p, vec![7u8; n]).unwrap();
            p
        };
        for n in [16, 1024 * 1024] {
            assert_eq!(read_pepper(&file(n)).unwrap().len(), n);
        }
        for n in [0, 15, 1024 * 1024 + 1] {
            let p = file(n);
            match read_pepper(&p) {
                Err(Error::Config(m)) => assert!(m.contains(&p.display().to_string()), "{m}"),
                other => panic!("{n} bytes: {other:?}"),
            }
        }
        let missing = dir.path().join("missing");
        match read_pepper(&missing) {
            Err(Error::Config(m)) => assert!(m.contains("missing"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_numeric_setting_is_a_number_in_its_range() {
        let n = |raw: &str| setting("RECUPERA_X", raw, 1..=24, M::ConfigNumber);
        assert_eq!(n("1").unwrap(), 1);
        assert_eq!(n(" 24 ").unwrap(), 24);
        assert_eq!(n("1_2").unwrap(), 12);
        for bad in ["0", "25", "-1", "doce", ""] {
            match n(bad) {
                Err(Error::Config(m)) => {
                    let want = tf(
                        M::ConfigNumber,
                        &[
                            ("name", &"--x (RECUPERA_X)"),
                            ("value", &crate::i18n::quote(bad)),
                            ("min", &1),
                            ("max", &24),
                        ],
                    );
                    assert_eq!(m, want);
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        // A setting with a sentence of its own says it instead.
        match setting::<i64>("RECUPERA_CODE_TTL_HOURS", "25", 1..=24, M::ConfigTtl) {
            Err(Error::Config(m)) => assert_eq!(m, t(M::ConfigTtl)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_policy_settings_are_bounded() {
        let none = OnArgv::default();
        let c = config(
            &["--code-ttl-hours", "24", "--min-password-length", "8"],
            none,
        )
        .unwrap();
        assert_eq!(c.code_ttl_secs, 24 * 3600);
        assert_eq!(c.policy.min_len, 8);
        assert_eq!(config(&[], none).unwrap().code_ttl_secs, 12 * 3600);
        assert_eq!(
            config_error(&["--code-ttl-hours", "25"], none),
            t(M::ConfigTtl)
        );
        assert_eq!(
            config_error(&["--min-password-length", "7"], none),
            t(M::ConfigMinLen)
        );
        for (flag, max) in [
            ("--request-min-ms", "10001"),
            ("--busy-timeout-ms", "3600001"),
            ("--smtp-timeout", "301"),
        ] {
            let m = config_error(&[flag, max], none);
            assert!(m.contains(max), "{m}");
        }
        let c = config(&["--request-min-ms", "250", "--busy-timeout-ms", "0"], none).unwrap();
        assert_eq!(c.request_min, Duration::from_millis(250));
        assert_eq!(c.busy_timeout, Duration::ZERO);
    }

    /// Without SMTP the mail goes to an outbox: `--outbox`, else beside
    /// the SQLite file; nothing runs in the background.
    #[test]
    fn the_outbox_is_beside_the_database_unless_named() {
        let none = OnArgv::default();
        let c = config(&["--db", "/srv/recupera/datos.db"], none).unwrap();
        assert!(
            matches!(&c.mailer.transport, Transport::Outbox(p) if p == Path::new("/srv/recupera/outbox"))
        );
        assert!(c.background.is_none());
        let c = config(
            &["--db", "/srv/recupera/datos.db", "--outbox", "/var/mail/x"],
            none,
        )
        .unwrap();
        assert!(
            matches!(&c.mailer.transport, Transport::Outbox(p) if p == Path::new("/var/mail/x"))
        );
    }

    /// A password typed on the command line is refused, for the database
    /// and for SMTP, without repeating it; from the environment it is
    /// taken.
    #[test]
    fn a_password_on_the_command_line_is_refused() {
        let url = "postgresql://ana:s3cr3t@db.example.co:5432/r";
        let argv = OnArgv {
            db: true,
            smtp_url: true,
            ..OnArgv::default()
        };
        let m = config_error(&["--db", url], argv);
        assert!(!m.contains("s3cr3t"), "{m}");
        assert!(config(&["--db", url], OnArgv::default()).is_ok());
        let smtp = "--smtp-url=smtps://ana:s3cr3t@mail.example.co";
        assert_eq!(config_error(&[smtp], argv), t(M::ConfigSmtpArgv));
        let c = config(&[smtp], OnArgv::default()).unwrap();
        assert!(matches!(c.mailer.transport, Transport::Smtp(_)));
    }

    /// With SMTP, a background delivery gets what it needs in its
    /// environment (never its argv).
    #[test]
    fn a_background_delivery_gets_the_settings_it_needs() {
        let c = config(
            &[
                "--db",
                "/srv/recupera/datos.db",
                "--smtp-url=smtps://mail.example.co",
                "--smtp-timeout",
                "30",
                "--busy-timeout-ms",
                "900",
                "--mail-from",
                "Soporte <soporte@example.co>",
                "--agent",
                "mesa-2",
            ],
            OnArgv::default(),
        )
        .unwrap();
        let env = c.background.unwrap().env;
        let get = |k: &str| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            get("RECUPERA_DB").as_deref(),
            Some("/srv/recupera/datos.db")
        );
        assert_eq!(
            get("RECUPERA_SMTP_URL").as_deref(),
            Some("smtps://mail.example.co")
        );
        assert_eq!(get("RECUPERA_SMTP_TIMEOUT").as_deref(), Some("30"));
        assert_eq!(get("RECUPERA_BUSY_TIMEOUT_MS").as_deref(), Some("900"));
        assert_eq!(
            get("RECUPERA_MAIL_FROM").as_deref(),
            Some("Soporte <soporte@example.co>")
        );
        assert_eq!(get("RECUPERA_AGENT").as_deref(), Some("mesa-2"));
        assert_eq!(get("RECUPERA_SMTP_CA_FILE"), None);
        assert_eq!(get("PATH"), std::env::var("PATH").ok());
    }

    #[test]
    fn the_footer_is_one_line_and_the_agent_is_shown_as_typed() {
        let none = OnArgv::default();
        let c = config(
            &[
                "--mail-footer",
                "Soporte\r\nBogotá",
                "--agent",
                "ana\u{1b}[2J",
            ],
            none,
        )
        .unwrap();
        assert_eq!(c.mailer.footer.as_deref(), Some("Soporte  Bogotá"));
        assert!(!c.agent.resolved());
        let agent = c.agent.name();
        assert!(
            !agent.contains('\u{1b}') && agent.starts_with("ana"),
            "{agent}"
        );
        let c = config(&["--mail-footer", " \n "], none).unwrap();
        assert_eq!(c.mailer.footer, None);
        let long = "ñ".repeat(70);
        assert_eq!(agent_name(Some(&long)), "ñ".repeat(64));
        assert_eq!(agent_name(Some("mesa-2")), "mesa-2");
    }

    #[cfg(unix)]
    #[test]
    fn the_system_account_is_the_one_id_names() {
        let out = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let me = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(!me.is_empty());
        assert_eq!(os_user_name(), Some(me));
    }

    #[test]
    fn recupera_lang_names_spanish_or_english_or_nothing() {
        use crate::i18n::Lang;
        assert_eq!(lang_named(Some("en")), Some(Lang::En));
        assert_eq!(lang_named(Some(" es ")), Some(Lang::Es));
        assert_eq!(lang_named(Some("EN")), Some(Lang::En));
        assert_eq!(lang_named(Some("es_CO.UTF-8")), Some(Lang::Es));
        assert_eq!(lang_named(Some("en-US")), Some(Lang::En));
        for other in [
            None,
            Some(""),
            Some("fr"),
            Some("fr_FR"),
            Some("eng"),
            Some("_es"),
        ] {
            assert_eq!(lang_named(other), None, "{other:?}");
        }
    }

    #[test]
    fn the_default_database_is_in_the_users_data_folder() {
        let p = |xdg: Option<&str>, home: Option<&str>| {
            db_path_under(xdg.map(Into::into), home.map(Into::into))
        };
        let data = PathBuf::from("/home/ana/.local/share/recupera/recupera.db");
        assert_eq!(p(None, Some("/home/ana")).unwrap(), data);
        assert_eq!(
            p(Some("/datos"), Some("/home/ana")).unwrap(),
            PathBuf::from("/datos/recupera/recupera.db")
        );
        // A relative or empty XDG_DATA_HOME is ignored.
        assert_eq!(p(Some("datos"), Some("/home/ana")).unwrap(), data);
        assert_eq!(p(Some(""), Some("/home/ana")).unwrap(), data);
        for home in [None, Some("")] {
            match p(None, home) {
                Err(Error::Config(m)) => assert_eq!(m, t(M::ConfigNoHome)),
                other => panic!("{home:?}: {other:?}"),
            }
        }
    }

    /// A background delivery's settings may hold the SMTP password (from
    /// the environment): `Debug` names them and shows no value.
    #[test]
    fn a_background_delivery_is_debugged_by_names_only() {
        let b = Background {
            env: vec![
                (
                    "RECUPERA_SMTP_URL",
                    "smtps://ana:s3cr3t@mail.example.co".into(),
                ),
                ("PGPASSWORD", "pg-s3cr3t".into()),
            ],
        };
        let shown = format!("{b:?}");
        assert_eq!(
            shown,
            r#"Background { env: ["RECUPERA_SMTP_URL", "PGPASSWORD"] }"#
        );
    }

    /// Without `--db`, the background delivery is told the file this
    /// process chose; a server is named without its password.
    #[test]
    fn a_background_delivery_is_told_which_database() {
        let file = Location::Sqlite(PathBuf::from("/srv/recupera/datos.db"));
        assert_eq!(db_path_os(&file), "/srv/recupera/datos.db");
        let url = "postgresql://ana:s3cr3t@db.example.co:5432/r";
        let server = Location::parse(std::ffi::OsStr::new(url), false, None).unwrap();
        assert_eq!(db_path_os(&server), "postgresql://ana@db.example.co:5432/r");
    }

    #[test]
    fn the_code_lifetime_is_told_in_hours() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = crate::ops::kit::quick_app(&dir);
        assert_eq!(app.ttl_hours(), 12);
        app.code_ttl_secs = 5 * 3600;
        assert_eq!(app.ttl_hours(), 5);
        assert_eq!(app.now(), clock.now());
        clock.advance(90);
        assert_eq!(app.now(), clock.now());
    }
}
