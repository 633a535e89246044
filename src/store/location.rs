//! Where the database is: the one place that tells the engines apart.
//!
//! Invariants:
//! - `postgres://…` and `postgresql://…` (any case) name a PostgreSQL
//!   server; every other value is a SQLite file path, taken as is.
//! - A PostgreSQL URL follows libpq: `postgresql://user@host:5432/db?sslmode=verify-full`,
//!   `postgresql:///db?host=/run/postgresql` for a Unix socket; `PGPASSWORD`
//!   (and `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`) fill what it leaves out.
//! - A password inside a URL typed on the command line is refused (argv is
//!   visible to every user of the machine), without echoing it.
//! - Plain text only to a Unix socket or a loopback address. A remote host
//!   always gets TLS with the certificate and host name verified, whatever
//!   `sslmode` says (`disable` to a remote host is refused).
//! - [`PgTarget::shown`] never contains a password: it is what messages
//!   and `db status` print.

use super::Error;
use crate::i18n::{M, t, tf};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PgTarget>),
}

/// How the connection to PostgreSQL is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgHost {
    /// A folder holding the server's Unix socket.
    Socket(PathBuf),
    Tcp(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    /// Plain text (Unix socket or loopback, and not asked for TLS).
    Off,
    /// TLS, certificate and host name verified.
    Verified,
}

#[derive(Clone)]
pub struct PgTarget {
    pub host: PgHost,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub tls: PgTls,
    pub connect_timeout: Duration,
    pub application_name: Option<String>,
    /// Extra CA certificate to trust (`RECUPERA_DB_CA_FILE`, or the URL's
    /// `sslrootcert`).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Location {
    /// Tells the engines apart. `on_argv`: the value was typed on the
    /// command line (where a password is refused). `ca_file`: the extra CA
    /// for PostgreSQL's TLS.
    pub fn parse(raw: &OsStr, on_argv: bool, ca_file: Option<&Path>) -> Result<Location, Error> {
        let Some(s) = raw.to_str() else {
            return Ok(Location::Sqlite(PathBuf::from(raw)));
        };
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return PgTarget::parse(s, on_argv, ca_file, &SystemEnv)
                .map(|t| Location::Postgres(Box::new(t)));
        }
        // psql's other spelling, "host=… dbname=… user=…": taken as a file
        // name it would become a SQLite database in folders named
        // "host=…", the shared server untouched (and a password in it not
        // refused on the command line). Said, never echoed.
        if is_conninfo(s) {
            return Err(Error::Config(t(M::ConfigDbConninfo).to_string()));
        }
        Ok(Location::Sqlite(PathBuf::from(raw)))
    }

    /// For messages: the file's path, or the server without password.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(t) => t.shown(),
        }
    }

    /// A SQLite file that is not there (nothing at all by that name, not
    /// even a dangling symlink); never true of a server.
    pub fn is_missing_file(&self) -> bool {
        matches!(self, Location::Sqlite(p)
            if std::fs::symlink_metadata(p)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound))
    }

    /// The folder beside a SQLite file (where the default outbox goes);
    /// none for a server.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => p.parent(),
            Location::Postgres(_) => None,
        }
    }
}

/// The environment as the URL parser sees it (tests give their own).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct SystemEnv;

impl Env for SystemEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// A libpq key/value connection string: its first word is `keyword=`
/// with one of libpq's connection keywords.
fn is_conninfo(s: &str) -> bool {
    const KEYWORDS: [&str; 12] = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "sslmode",
        "sslrootcert",
        "connect_timeout",
        "application_name",
        "service",
    ];
    let first = s.split_whitespace().next().unwrap_or("");
    first
        .split_once('=')
        .is_some_and(|(k, _)| KEYWORDS.contains(&k.trim()))
}

fn bad_url(err: &dyn std::fmt::Display) -> Error {
    Error::Config(tf(M::ConfigDbUrl, &[("err", err)]))
}

fn decode(s: &str) -> Result<String, Error> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| bad_url(&"not UTF-8"))
}

pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

impl PgTarget {
    pub fn parse(
        url: &str,
        on_argv: bool,
        ca_file: Option<&Path>,
        env: &dyn Env,
    ) -> Result<PgTarget, Error> {
        // libpq takes a user with no host (`postgresql://ana@/db?host=/run`,
        // what `shown` prints for a socket); the URL parser refuses an
        // empty host after a user, so the user is taken off first.
        let (url, userinfo) = match url.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                match rest[..end].strip_suffix('@') {
                    Some(info) if !info.contains('@') => {
                        (format!("{scheme}://{}", &rest[end..]), Some(info))
                    }
                    _ => (url.to_string(), None),
                }
            }
            None => (url.to_string(), None),
        };
        let u = url::Url::parse(&url).map_err(|e| bad_url(&e))?;
        let mut host: Option<String> = u
            .host_str()
            .filter(|h| !h.is_empty())
            .map(decode)
            .transpose()?;
        let mut port: Option<u16> = u.port();
        let (raw_user, raw_password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            },
            None => (u.username(), u.password()),
        };
        let mut user: Option<String> = Some(decode(raw_user)?).filter(|s| !s.is_empty());
        let mut password: Option<String> = raw_password.map(decode).transpose()?;
        let mut dbname: Option<String> =
            Some(decode(u.path().trim_start_matches('/'))?).filter(|s| !s.is_empty());
        let mut sslmode: Option<String> = None;
        let mut timeout: Option<u64> = None;
        let mut application_name = None;
        let mut rootcert: Option<PathBuf> = None;
        for (k, v) in u.query_pairs() {
            let v = v.into_owned();
            match k.as_ref() {
                "host" => host = Some(v),
                "port" => port = Some(v.parse().map_err(|_| bad_url(&format!("port={v}")))?),
                "user" => user = Some(v),
                "password" => password = Some(v),
                "dbname" => dbname = Some(v),
                "sslmode" => sslmode = Some(v),
                "connect_timeout" => {
                    timeout = Some(
                        v.parse()
                            .map_err(|_| bad_url(&format!("connect_timeout={v}")))?,
                    )
                }
                "application_name" => application_name = Some(v),
                "sslrootcert" => rootcert = Some(PathBuf::from(v)),
                other => {
                    return Err(bad_url(&tf(
                        M::ConfigDbUrlParam,
                        &[("param", &crate::i18n::quote(other))],
                    )));
                }
            }
        }
        if on_argv && password.is_some() {
            return Err(Error::Config(crate::i18n::t(M::ConfigDbArgv).to_string()));
        }
        let password = password.or_else(|| env.var("PGPASSWORD"));
        let host = host.or_else(|| env.var("PGHOST"));
        if host.as_deref().is_some_and(|h| h.contains(',')) {
            return Err(bad_url(&"several hosts"));
        }
        let host = match host {
            Some(h) if h.starts_with('/') => PgHost::Socket(PathBuf::from(h)),
            Some(h) => PgHost::Tcp(h),
            None => {
                let run = Path::new("/var/run/postgresql");
                if run.is_dir() {
                    PgHost::Socket(run.to_path_buf())
                } else {
                    PgHost::Tcp("localhost".to_string())
                }
            }
        };
        let port = match port {
            Some(p) => p,
            None => match env.var("PGPORT") {
                Some(p) => p.parse().map_err(|_| bad_url(&format!("PGPORT={p}")))?,
                None => 5432,
            },
        };
        let user = user
            .or_else(|| env.var("PGUSER"))
            .or_else(|| env.var("USER"))
            .unwrap_or_else(|| "postgres".to_string());
        let dbname = dbname
            .or_else(|| env.var("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let local = match &host {
            PgHost::Socket(_) => true,
            PgHost::Tcp(h) => is_loopback(h),
        };
        let tls = match (sslmode.as_deref(), local) {
            (None | Some("disable" | "allow" | "prefer"), true) => PgTls::Off,
            (Some("require" | "verify-ca" | "verify-full"), _) => PgTls::Verified,
            (None | Some("allow" | "prefer"), false) => PgTls::Verified,
            (Some("disable"), false) => {
                let shown = match &host {
                    PgHost::Tcp(h) => h.clone(),
                    PgHost::Socket(d) => d.display().to_string(),
                };
                return Err(Error::Config(tf(M::ConfigDbPlain, &[("host", &shown)])));
            }
            (Some(other), _) => return Err(bad_url(&format!("sslmode={other}"))),
        };
        if matches!(host, PgHost::Socket(_)) && tls == PgTls::Verified {
            // libpq never does TLS over a Unix socket either.
            return Err(bad_url(&"sslmode with a Unix socket"));
        }
        Ok(PgTarget {
            host,
            port,
            user,
            password,
            dbname,
            tls,
            connect_timeout: Duration::from_secs(timeout.unwrap_or(10).clamp(1, 300)),
            application_name,
            ca_file: rootcert.or_else(|| ca_file.map(Path::to_path_buf)),
        })
    }

    /// `user@host:port/db` (no password), for messages and `db status`.
    pub fn shown(&self) -> String {
        match &self.host {
            PgHost::Socket(dir) => format!(
                "postgresql://{}@/{}?host={}",
                self.user,
                self.dbname,
                dir.display()
            ),
            PgHost::Tcp(h) => format!(
                "postgresql://{}@{}:{}/{}",
                self.user, h, self.port, self.dbname
            ),
        }
    }

    /// `host:port` or the socket's path, for "cannot reach …" messages.
    pub fn server(&self) -> String {
        match &self.host {
            PgHost::Socket(dir) => dir
                .join(format!(".s.PGSQL.{}", self.port))
                .display()
                .to_string(),
            PgHost::Tcp(h) => format!("{h}:{}", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_psql_key_value_string_is_told_from_a_file_name() {
        for yes in [
            "host=/tmp dbname=r user=ana",
            "dbname=recupera",
            "  user=ana password=x",
            "service=oficina",
        ] {
            assert!(is_conninfo(yes), "{yes}");
        }
        for no in [
            "/srv/recupera/datos.db",
            "datos=2024.db",
            "mi host=algo.db",
            "host",
            "",
        ] {
            assert!(!is_conninfo(no), "{no}");
        }
        assert!(matches!(
            Location::parse(OsStr::new("dbname=r password=S3cret"), true, None),
            Err(Error::Config(m)) if !m.contains("S3cret")
        ));
    }
    use std::collections::HashMap;

    struct Fake(HashMap<&'static str, &'static str>);

    impl Env for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    fn env(pairs: &[(&'static str, &'static str)]) -> Fake {
        Fake(pairs.iter().copied().collect())
    }

    fn parse(url: &str) -> Result<PgTarget, Error> {
        PgTarget::parse(url, false, None, &env(&[("USER", "ana")]))
    }

    #[test]
    fn engine_is_chosen_by_scheme() {
        for s in [
            "postgres://h:5432/db",
            "postgresql://h:5432/db",
            "PostgreSQL://h:5432/db",
        ] {
            assert!(
                matches!(
                    Location::parse(OsStr::new(s), false, None),
                    Ok(Location::Postgres(_))
                ),
                "{s}"
            );
        }
        for s in [
            "recupera.db",
            "/srv/x/postgresql.db",
            "./postgres:",
            "pg://h",
        ] {
            assert!(
                matches!(
                    Location::parse(OsStr::new(s), false, None),
                    Ok(Location::Sqlite(_))
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn unix_socket_forms() {
        let t = parse("postgresql:///recupera?host=/tmp/pg%20dir&user=recupera").unwrap();
        assert_eq!(t.host, PgHost::Socket(PathBuf::from("/tmp/pg dir")));
        assert_eq!(
            (t.user.as_str(), t.dbname.as_str()),
            ("recupera", "recupera")
        );
        assert_eq!(t.tls, PgTls::Off);
        assert_eq!(t.server(), "/tmp/pg dir/.s.PGSQL.5432");
        let t = parse("postgresql://%2Frun%2Fpostgresql/db").unwrap();
        assert_eq!(t.host, PgHost::Socket(PathBuf::from("/run/postgresql")));
    }

    #[test]
    fn tls_rules() {
        assert_eq!(parse("postgresql://127.0.0.1/db").unwrap().tls, PgTls::Off);
        assert_eq!(parse("postgresql://[::1]:5433/db").unwrap().port, 5433);
        assert_eq!(
            parse("postgresql://localhost/db?sslmode=require")
                .unwrap()
                .tls,
            PgTls::Verified
        );
        let remote = parse("postgresql://db.example.co/recupera").unwrap();
        assert_eq!(remote.tls, PgTls::Verified, "a remote host always gets TLS");
        assert_eq!(
            parse("postgresql://db.example.co/r?sslmode=prefer")
                .unwrap()
                .tls,
            PgTls::Verified
        );
        assert!(matches!(
            parse("postgresql://db.example.co/r?sslmode=disable"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            parse("postgresql://h/r?sslmode=bogus"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            parse("postgresql://h/r?frobnicate=1"),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn passwords() {
        let t = parse("postgresql://ana:s%40cret@db.example.co/r").unwrap();
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert!(!t.shown().contains("cret"));
        assert!(!format!("{t:?}").contains("cret"));
        let e = PgTarget::parse("postgresql://ana:s3cr3t@h/r", true, None, &env(&[])).unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let e = PgTarget::parse(
            "postgresql://ana@h/r?password=s3cr3t",
            true,
            None,
            &env(&[]),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        // A user and password with no host (a socket): refused on argv too.
        let e = PgTarget::parse(
            "postgresql://ana:s3cr3t@/r?host=/run/pg",
            true,
            None,
            &env(&[]),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let t = PgTarget::parse(
            "postgresql://ana@h/r",
            true,
            None,
            &env(&[("PGPASSWORD", "x")]),
        )
        .unwrap();
        assert_eq!(t.password.as_deref(), Some("x"));
    }

    /// What messages and `db status` print: the file's path, or the
    /// server without its password (`Debug` too); the default outbox goes
    /// beside a file, never beside a server.
    #[test]
    fn a_location_is_shown_without_secrets_and_has_a_folder_only_as_a_file() {
        let file = Location::parse(OsStr::new("/srv/recupera/datos.db"), false, None).unwrap();
        assert_eq!(file.shown(), "/srv/recupera/datos.db");
        assert_eq!(file.folder(), Some(Path::new("/srv/recupera")));
        let t = parse("postgresql://ana:s3cr3t@db.example.co:5433/r").unwrap();
        assert_eq!(t.shown(), "postgresql://ana@db.example.co:5433/r");
        assert_eq!(format!("{t:?}"), t.shown());
        assert_eq!(t.server(), "db.example.co:5433");
        let server = Location::Postgres(Box::new(t));
        assert_eq!(server.shown(), "postgresql://ana@db.example.co:5433/r");
        assert_eq!(server.folder(), None);
        let socket = parse("postgresql:///r?host=/run/pg&user=u").unwrap();
        assert_eq!(socket.shown(), "postgresql://u@/r?host=/run/pg");
        // What it shows is taken back, as libpq takes it.
        let again = parse(&socket.shown()).unwrap();
        assert_eq!(again.shown(), socket.shown());
        assert_eq!((again.user.as_str(), again.dbname.as_str()), ("u", "r"));
        let with_pw = parse("postgresql://u:p%40ss@/r?host=/run/pg").unwrap();
        assert_eq!(with_pw.password.as_deref(), Some("p@ss"));
        // Two `@` with no host: which one ends the user is anyone's guess;
        // refused (an `@` in a user or password is written %40).
        assert!(parse("postgresql://u@x@/r?host=/run/pg").is_err());
    }

    /// The process's environment, an empty variable counting as unset
    /// (as libpq counts it). `PATH` is set wherever the tests run.
    #[test]
    fn the_system_environment_is_read_as_is() {
        let path = SystemEnv.var("PATH").unwrap();
        assert_eq!(Some(path), std::env::var("PATH").ok());
        assert_eq!(SystemEnv.var("RECUPERA_SURELY_UNSET_VARIABLE"), None);
    }

    #[test]
    fn libpq_defaults_from_the_environment() {
        let t = PgTarget::parse(
            "postgresql://",
            false,
            None,
            &env(&[
                ("PGHOST", "10.1.2.3"),
                ("PGPORT", "6543"),
                ("PGUSER", "u"),
                ("PGDATABASE", "d"),
            ]),
        )
        .unwrap();
        assert_eq!(t.host, PgHost::Tcp("10.1.2.3".into()));
        assert_eq!(
            (t.port, t.user.as_str(), t.dbname.as_str()),
            (6543, "u", "d")
        );
        assert_eq!(t.tls, PgTls::Verified);
    }
}
