//! The PostgreSQL engine: one shared server for several offices.
//!
//! Invariants:
//! - TLS is rustls (ring provider), verified against the system roots plus
//!   `RECUPERA_DB_CA_FILE`; plain text only to a Unix socket or loopback
//!   (decided in [`super::location`]).
//! - A write transaction runs at READ COMMITTED and locks, `FOR NO KEY
//!   UPDATE`, every account row it reads. All writes about an account go
//!   through its row first, so they are serialised per account exactly as
//!   SQLite's write lock serialises them; rows without an account (a mail
//!   claim) are taken with conditional `UPDATE`s, which PostgreSQL re-checks
//!   after waiting. A lock held longer than the busy timeout (`lock_timeout`)
//!   is exit 75; deadlocks and serialization failures come back as
//!   [`Error::Conflict`] and are retried by `Store::write`.
//! - A read transaction is REPEATABLE READ, READ ONLY: one snapshot.
//! - Times are parameters from the program's clock; no query calls `now()`.
//! - Listings read through portals a page at a time, so memory stays flat
//!   whatever the table's size.

mod accounts;
mod audit;
mod codes;
mod mail;
pub mod migrations;
mod whole;

use super::location::{PgHost, PgTarget, PgTls};
use super::{Engine, Error, Mode, Result, Storage, Txn};
use crate::i18n::{M, t, tf};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, NoTls, Statement};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Rows fetched per round trip by listings.
pub(crate) const PAGE: i32 = 1000;

pub struct Postgres {
    client: Client,
    stmts: HashMap<String, Statement>,
    server: String,
}

/// A transaction; its operations live in one file per aggregate.
pub struct PgTxn<'c> {
    tx: postgres::Transaction<'c>,
    stmts: &'c mut HashMap<String, Statement>,
    write: bool,
    /// Rows waiting to be written by `COPY` (`db copy` into PostgreSQL).
    copy: whole::CopyBuffer,
}

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

#[cfg(test)]
thread_local! {
    /// While a test holds `Some`: every statement this thread sends
    /// through a transaction, with its begin and commit, in order (what
    /// SQLite's trace gives the SQLite side of the same tests).
    pub(crate) static SENT: std::cell::RefCell<Option<Vec<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Notes `what` for a test recording [`SENT`]; nothing outside tests.
#[cfg(test)]
fn sent(what: &str) {
    SENT.with(|s| {
        if let Some(v) = s.borrow_mut().as_mut() {
            v.push(what.to_string());
        }
    });
}
#[cfg(not(test))]
fn sent(_: &str) {}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        map_error(&e, None)
    }
}

/// Maps a PostgreSQL error to what a user can act on. `server` names the
/// server for connection failures.
fn map_error(e: &postgres::Error, server: Option<&str>) -> Error {
    let shown = server.unwrap_or("PostgreSQL");
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let text = crate::i18n::quote_long(db.message());
        return if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            Error::Conflict(t(M::DbBusy).to_string())
        } else if *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::QUERY_CANCELED
            || *code == SqlState::TOO_MANY_CONNECTIONS
        {
            Error::Busy(t(M::DbBusy).to_string())
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            Error::Auth(tf(M::DbAuth, &[("server", &shown), ("err", &text)]))
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            Error::Other(tf(M::DbCannotOpen, &[("path", &shown), ("err", &text)]))
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            Error::Corrupt(t(M::DbReadOnlyAny).to_string())
        } else if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            Error::Unavailable(tf(M::DbUnreachable, &[("server", &shown), ("err", &text)]))
        } else {
            Error::Other(tf(M::DbError, &[("err", &text)]))
        };
    }
    let text = crate::i18n::quote_long(&error_chain(e));
    // A socket the server closed or reset mid-command: nothing was
    // committed, and trying again later is what helps (69, not 74).
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io || server.is_some() {
        return Error::Unavailable(tf(M::DbUnreachable, &[("server", &shown), ("err", &text)]));
    }
    Error::Other(tf(M::DbError, &[("err", &text)]))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let part = inner.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        src = inner.source();
    }
    s
}

/// The TLS set-up for a remote server: system roots plus the extra CA.
fn tls_config(target: &PgTarget) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot parse is skipped, not fatal.
        let _ = roots.add(cert);
    }
    if let Some(path) = &target.ca_file {
        let bad = |e: &dyn std::fmt::Display| {
            Error::Config(tf(
                M::ConfigDbCa,
                &[("path", &crate::i18n::shown_path(path)), ("err", e)],
            ))
        };
        let pem = crate::input::read_small_file(path, 1024 * 1024)
            .map_err(|e| bad(&crate::i18n::os_error(&e)))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(&e))?;
        if certs.is_empty() {
            return Err(bad(&"no certificate"));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(&e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(tf(M::ConfigDbUrl, &[("err", &e)])))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cfg)
}

impl Postgres {
    /// Connects, checks the schema and brings it up to date.
    pub fn open(target: &PgTarget, busy_timeout: Duration) -> Result<Postgres> {
        let mut cfg = postgres::Config::new();
        cfg.user(&target.user)
            .dbname(&target.dbname)
            .port(target.port)
            .connect_timeout(target.connect_timeout)
            .application_name(target.application_name.as_deref().unwrap_or("recupera"));
        match &target.host {
            PgHost::Socket(dir) => {
                cfg.host_path(dir);
            }
            PgHost::Tcp(h) => {
                cfg.host(h.trim_start_matches('[').trim_end_matches(']'));
            }
        }
        if let Some(p) = &target.password {
            cfg.password(p);
        }
        let server = target.server();
        // The driver's connect_timeout covers the socket's connect only: a
        // server that accepts and then never answers (a frozen postmaster,
        // something else on the port) would hold the start-up handshake
        // for ever. The whole connection runs on a thread of its own and
        // is given up after the timeout (libpq's meaning of it); the
        // thread ends with the process.
        let (tx, rx) = std::sync::mpsc::channel();
        let tls = match target.tls {
            PgTls::Off => {
                cfg.ssl_mode(postgres::config::SslMode::Disable);
                None
            }
            PgTls::Verified => {
                cfg.ssl_mode(postgres::config::SslMode::Require);
                Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
                    target,
                )?))
            }
        };
        std::thread::Builder::new()
            .name("pg-connect".into())
            .spawn(move || {
                let _ = tx.send(match tls {
                    None => cfg.connect(NoTls),
                    Some(tls) => cfg.connect(tls),
                });
            })
            .map_err(|e| {
                Error::Unavailable(tf(M::DbUnreachable, &[("server", &server), ("err", &e)]))
            })?;
        let client = match rx.recv_timeout(target.connect_timeout) {
            Ok(connected) => connected.map_err(|e| connect_error(&e, &server, target))?,
            Err(_) => {
                return Err(Error::Unavailable(tf(
                    M::DbUnreachable,
                    &[
                        ("server", &server),
                        (
                            "err",
                            &tf(
                                M::DbNoAnswer,
                                &[("secs", &target.connect_timeout.as_secs())],
                            ),
                        ),
                    ],
                )));
            }
        };
        let mut db = Postgres {
            client,
            stmts: HashMap::new(),
            server,
        };
        // A row lock held longer than this is "busy" (exit 75), as SQLite's
        // busy_timeout; at least 1 ms (0 would mean "wait forever").
        let ms = busy_timeout.as_millis().clamp(1, i32::MAX as u128);
        db.client
            .batch_execute(&format!(
                "SET lock_timeout = {ms}; SET idle_in_transaction_session_timeout = 0"
            ))
            .map_err(|e| map_error(&e, Some(&db.server)))?;
        migrations::migrate(&mut db.client, &target.shown())?;
        Ok(db)
    }

    /// Direct access for engine-specific tests.
    #[doc(hidden)]
    pub fn raw(&mut self) -> &mut Client {
        &mut self.client
    }
}

fn connect_error(e: &postgres::Error, server: &str, target: &PgTarget) -> Error {
    if e.as_db_error().is_some() {
        return map_error(e, Some(server));
    }
    let chain = error_chain(e);
    // A certificate rustls refuses is a configuration matter: the operator
    // must trust the server's CA (RECUPERA_DB_CA_FILE), not retry later.
    let lower = chain.to_ascii_lowercase();
    if target.tls == PgTls::Verified
        && (lower.contains("certificate") || lower.contains("invalid peer"))
    {
        return Error::Config(tf(
            M::ConfigDbTls,
            &[
                ("server", &server),
                ("err", &crate::i18n::quote_long(&chain)),
            ],
        ));
    }
    if lower.contains("password") && lower.contains("missing") {
        return Error::Auth(tf(
            M::DbAuth,
            &[
                ("server", &server),
                ("err", &crate::i18n::quote_long(&chain)),
            ],
        ));
    }
    Error::Unavailable(tf(
        M::DbUnreachable,
        &[
            ("server", &server),
            ("err", &crate::i18n::quote_long(&chain)),
        ],
    ))
}

impl Storage for Postgres {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn schema_version(&mut self) -> Result<i64> {
        migrations::current(&mut self.client)
    }

    fn begin(&mut self, mode: Mode) -> Result<Box<dyn Txn + '_>> {
        let tx = match mode {
            Mode::Read => self
                .client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start(),
            Mode::Write => self
                .client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start(),
        }
        .map_err(|e| map_error(&e, Some(&self.server)))?;
        sent(if mode == Mode::Write {
            "BEGIN WRITE"
        } else {
            "BEGIN READ"
        });
        Ok(Box::new(PgTxn {
            tx,
            stmts: &mut self.stmts,
            write: mode == Mode::Write,
            copy: whole::CopyBuffer::default(),
        }))
    }

    fn compact(&mut self) -> Result<()> {
        // Autovacuum takes care of dead rows; nothing to fold in.
        Ok(())
    }

    fn scrub(&mut self) -> Result<bool> {
        // Dead row versions of the erased account disappear from the
        // tables' pages at the next vacuum; ask for it now. (Their bytes
        // can remain in free space until VACUUM FULL: README.)
        self.client
            .batch_execute("VACUUM accounts, codes, notices, audit")
            .map_err(Error::from)?;
        Ok(true)
    }
}

impl Txn for PgTxn<'_> {
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.flush_copy()?;
        let PgTxn { tx, .. } = *self;
        sent("COMMIT");
        Ok(tx.commit()?)
    }

    fn insert_invitations(
        &mut self,
        codes: &[crate::store::NewCode<'_>],
        log: &crate::domain::limits::RequestLog,
    ) -> Result<()> {
        if codes.is_empty() {
            return Ok(());
        }
        let accounts: Vec<i64> = codes.iter().map(|c| c.account_id).collect();
        let mut seen = std::collections::HashSet::with_capacity(accounts.len());
        if !accounts.iter().all(|a| seen.insert(*a)) {
            // An account twice: its second code must kill its first, which
            // one statement cannot do; one at a time, as the default does.
            return crate::store::invitations_one_by_one(self, codes, log);
        }
        let now: Vec<i64> = codes.iter().map(|c| c.now).collect();
        let hashes: Vec<Option<&str>> = codes.iter().map(|c| c.hash).collect();
        let expires: Vec<i64> = codes.iter().map(|c| c.expires_at).collect();
        let recipients: Vec<&str> = codes.iter().map(|c| c.recipient.as_str()).collect();
        let claims: Vec<Option<&str>> = codes
            .iter()
            .map(|c| c.claim.map(|cl| cl.token.as_str()))
            .collect();
        let until: Vec<Option<i64>> = codes.iter().map(|c| c.claim.map(|cl| cl.until)).collect();
        // `insert_code`'s three statements, each for the whole batch.
        self.exec(
            "UPDATE codes c SET state = 'replaced', ends_at = LEAST(c.ends_at, v.now) \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS v (acc, now) \
             JOIN accounts a ON a.id = v.acc \
             WHERE c.id = a.live_code_id AND c.account_id = a.id AND c.state = 'pending'",
            &[&accounts, &now],
        )?;
        let rows = self.rows(
            "INSERT INTO codes (account_id, code_hash, created_at, expires_at, ends_at, \
             recipient, claim, claimed_until) \
             SELECT acc, h, n, e, e, r, cl, u FROM UNNEST($1::BIGINT[], $2::TEXT[], \
             $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::BIGINT[]) \
             WITH ORDINALITY AS v (acc, h, n, e, r, cl, u, i) ORDER BY i \
             RETURNING id, account_id",
            &[
                &accounts,
                &hashes,
                &now,
                &expires,
                &recipients,
                &claims,
                &until,
            ],
        )?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut owners = Vec::with_capacity(rows.len());
        for r in &rows {
            ids.push(get::<i64>(r, 0)?);
            owners.push(get::<i64>(r, 1)?);
        }
        self.exec(
            "UPDATE accounts a SET live_code_id = v.id, request_log = $3 \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS v (acc, id) WHERE a.id = v.acc",
            &[&owners, &ids, &log.to_stored()],
        )?;
        Ok(())
    }
}

impl PgTxn<'_> {
    /// A prepared statement, cached for the connection's life (one round
    /// trip per execution instead of two).
    pub(crate) fn stmt(&mut self, sql: &str) -> Result<Statement> {
        sent(sql);
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(crate) fn exec(&mut self, sql: &str, params: Params<'_>) -> Result<u64> {
        let s = self.stmt(sql)?;
        Ok(self.tx.execute(&s, params)?)
    }

    pub(crate) fn rows(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<postgres::Row>> {
        let s = self.stmt(sql)?;
        Ok(self.tx.query(&s, params)?)
    }

    pub(crate) fn opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<postgres::Row>> {
        let s = self.stmt(sql)?;
        Ok(self.tx.query_opt(&s, params)?)
    }

    pub(crate) fn one(&mut self, sql: &str, params: Params<'_>) -> Result<postgres::Row> {
        let s = self.stmt(sql)?;
        Ok(self.tx.query_one(&s, params)?)
    }

    /// Streams a query's rows a page at a time through a portal.
    pub(crate) fn each_row(
        &mut self,
        sql: &str,
        params: Params<'_>,
        mut f: impl FnMut(&postgres::Row) -> Result<()>,
    ) -> Result<()> {
        let portal = self.tx.bind(sql, params)?;
        loop {
            let rows = self.tx.query_portal(&portal, PAGE)?;
            let n = rows.len();
            for r in &rows {
                f(r)?;
            }
            if n < PAGE as usize {
                return Ok(());
            }
        }
    }
}

/// ` FOR NO KEY UPDATE` in a write transaction: the rows read stay locked
/// until commit, so the limits read from them cannot be raced.
pub(crate) fn lock_clause(write: bool) -> &'static str {
    if write { " FOR NO KEY UPDATE" } else { "" }
}

/// A column of a row, typed; a mismatch is an error, never a panic.
pub(crate) fn get<'a, T: postgres::types::FromSql<'a>>(
    r: &'a postgres::Row,
    i: usize,
) -> Result<T> {
    r.try_get(i)
        .map_err(|e| Error::Other(tf(M::DbError, &[("err", &e)])))
}

#[cfg(test)]
mod tests {
    //! Each class of server error, provoked on the throwaway server, and
    //! the exit code it leads to: busy (75), conflict (retried, then 75),
    //! auth and configuration (78), unreachable (69), read-only and other
    //! database errors (74). The store suite runs against a healthy server
    //! and never sees these.
    use super::*;
    use crate::store::location::Location;

    /// A fresh database's URL and its target, or `None` without a server.
    fn fresh() -> Option<(String, PgTarget)> {
        let url = crate::testing::fresh_pg_url()?;
        Some((url.clone(), target(&url)))
    }

    fn target(url: &str) -> PgTarget {
        match Location::parse(std::ffi::OsStr::new(url), false, None).unwrap() {
            Location::Postgres(t) => *t,
            Location::Sqlite(p) => panic!("{url} parsed as a SQLite file {}", p.display()),
        }
    }

    fn client(url: &str) -> Client {
        Client::connect(url, NoTls).unwrap()
    }

    /// The server's error for `sql` run alone on a new connection.
    fn failing(url: &str, sql: &str) -> postgres::Error {
        match client(url).batch_execute(sql) {
            Err(e) => e,
            Ok(()) => panic!("{sql} succeeded"),
        }
    }

    fn code_of(e: &postgres::Error) -> Option<SqlState> {
        e.as_db_error().map(|d| d.code().clone())
    }

    /// Like `url` with its user replaced.
    fn as_user(url: &str, user: &str) -> String {
        let mut u = url::Url::parse(url).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "user" {
                    user.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u.to_string()
    }

    fn open_err(t: &PgTarget) -> Error {
        match Postgres::open(t, Duration::from_millis(200)) {
            Err(e) => e,
            Ok(_) => panic!("{} opened", t.shown()),
        }
    }

    #[test]
    fn a_role_the_server_does_not_know_is_refused_credentials() {
        let Some((url, _)) = fresh() else { return };
        let t = target(&as_user(&url, "nadie_conocido"));
        let e = open_err(&t);
        let Error::Auth(msg) = &e else {
            panic!("{e:?}")
        };
        assert!(msg.contains(&t.server()), "{msg}");
        assert!(msg.contains("nadie_conocido"), "the server's reason: {msg}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 78);
    }

    #[test]
    fn a_role_over_its_connection_limit_is_busy() {
        let Some((url, _)) = fresh() else { return };
        // Roles belong to the whole server: one per test process, dropped
        // at the end (the server may be a developer's own).
        let role = format!("sin_cupo_{}", std::process::id());
        let mut admin = client(&url);
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"
            ))
            .unwrap();
        let e = open_err(&target(&as_user(&url, &role)));
        admin.batch_execute(&format!("DROP ROLE {role}")).unwrap();
        assert!(matches!(&e, Error::Busy(m) if m == t(M::DbBusy)), "{e:?}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 75);
    }

    #[test]
    fn a_database_the_server_does_not_have_is_named() {
        let Some((_, mut t)) = fresh() else { return };
        t.dbname = "no_existe_aqui".to_string();
        let e = open_err(&t);
        let Error::Other(msg) = &e else {
            panic!("{e:?}")
        };
        assert!(msg.contains(&t.server()), "{msg}");
        assert!(msg.contains("no_existe_aqui"), "{msg}");
    }

    #[test]
    fn a_socket_nobody_listens_on_is_unreachable_with_its_reason() {
        let Some((_, mut t)) = fresh() else { return };
        let dir = tempfile::tempdir().unwrap();
        t.host = PgHost::Socket(dir.path().to_path_buf());
        let e = open_err(&t);
        let Error::Unavailable(msg) = &e else {
            panic!("{e:?}")
        };
        assert!(msg.contains(&t.server()), "{msg}");
        // The cause under the driver's "error connecting to server".
        assert!(msg.contains("No such file or directory"), "{msg}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 69);
    }

    #[test]
    fn a_row_held_past_the_busy_timeout_is_busy() {
        let Some((url, target)) = fresh() else { return };
        let mut db = Postgres::open(&target, Duration::from_millis(50)).unwrap();
        let mut holder = client(&url);
        let mut held = holder.transaction().unwrap();
        held.batch_execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
            .unwrap();
        let e = db
            .client
            .batch_execute("SELECT 1 FROM accounts")
            .map_err(Error::from)
            .unwrap_err();
        assert!(matches!(&e, Error::Busy(m) if m == t(M::DbBusy)), "{e:?}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 75);
        held.rollback().unwrap();
    }

    #[test]
    fn a_statement_cancelled_by_its_timeout_is_busy() {
        let Some((url, _)) = fresh() else { return };
        let e = failing(&url, "SET statement_timeout = 1; SELECT pg_sleep(5)");
        assert_eq!(code_of(&e), Some(SqlState::QUERY_CANCELED));
        assert!(matches!(Error::from(e), Error::Busy(_)));
    }

    #[test]
    fn two_serializable_writers_and_a_deadlock_are_conflicts() {
        let Some((url, _)) = fresh() else { return };
        client(&url)
            .batch_execute(
                "CREATE TABLE n (k int PRIMARY KEY, v int); INSERT INTO n VALUES (1, 0), (2, 0)",
            )
            .unwrap();
        // Write skew: each reads the row the other writes.
        let (mut c1, mut c2) = (client(&url), client(&url));
        let begin = "BEGIN ISOLATION LEVEL SERIALIZABLE";
        c1.batch_execute(begin).unwrap();
        c2.batch_execute(begin).unwrap();
        c1.batch_execute("SELECT v FROM n WHERE k = 2; UPDATE n SET v = 1 WHERE k = 1")
            .unwrap();
        c2.batch_execute("SELECT v FROM n WHERE k = 1; UPDATE n SET v = 1 WHERE k = 2")
            .unwrap();
        c1.batch_execute("COMMIT").unwrap();
        let e = c2.batch_execute("COMMIT").unwrap_err();
        assert_eq!(code_of(&e), Some(SqlState::T_R_SERIALIZATION_FAILURE));
        let e = Error::from(e);
        assert!(
            matches!(&e, Error::Conflict(m) if m == t(M::DbBusy)),
            "{e:?}"
        );
        assert_eq!(crate::error::Error::from(e).exit_code(), 75);

        // A deadlock: each holds one row and waits for the other's.
        let (mut c1, mut c2) = (client(&url), client(&url));
        for c in [&mut c1, &mut c2] {
            // Found in 50 ms instead of the default second.
            c.batch_execute("SET deadlock_timeout = '50ms'").unwrap();
        }
        c1.batch_execute("BEGIN; UPDATE n SET v = 2 WHERE k = 1")
            .unwrap();
        c2.batch_execute("BEGIN; UPDATE n SET v = 2 WHERE k = 2")
            .unwrap();
        let other = std::thread::spawn(move || {
            let r = c1.batch_execute("UPDATE n SET v = 3 WHERE k = 2");
            let _ = c1.batch_execute("ROLLBACK");
            r
        });
        let mine = c2.batch_execute("UPDATE n SET v = 3 WHERE k = 1");
        let _ = c2.batch_execute("ROLLBACK");
        let theirs = other.join().unwrap();
        // The server breaks the cycle by failing exactly one of the two.
        let e = match (mine, theirs) {
            (Err(e), Ok(())) | (Ok(()), Err(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(code_of(&e), Some(SqlState::T_R_DEADLOCK_DETECTED));
        assert!(matches!(Error::from(e), Error::Conflict(_)));
    }

    #[test]
    fn a_write_in_a_read_only_transaction_changes_nothing() {
        let Some((url, _)) = fresh() else { return };
        let e = failing(&url, "BEGIN READ ONLY; CREATE TABLE x (k int)");
        assert_eq!(code_of(&e), Some(SqlState::READ_ONLY_SQL_TRANSACTION));
        let e = Error::from(e);
        assert!(
            matches!(&e, Error::Corrupt(m) if m == t(M::DbReadOnlyAny)),
            "{e:?}"
        );
        assert_eq!(crate::error::Error::from(e).exit_code(), 74);
    }

    #[test]
    fn a_connection_the_server_ends_is_unreachable() {
        let Some((url, t)) = fresh() else { return };
        // Ended while it waits for an answer: usually the server's last
        // word (57P01) arrives first; in about one run in ten here the
        // client sees only the closed socket. Either is "unreachable".
        let e = failing(&url, "SELECT pg_terminate_backend(pg_backend_pid())");
        let code = code_of(&e);
        assert!(
            code.is_none() || code == Some(SqlState::ADMIN_SHUTDOWN),
            "{e:?}"
        );
        let e = Error::from(e);
        assert!(matches!(&e, Error::Unavailable(_)), "{e:?}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 69);
        // Ended while idle: the next statement finds the socket closed.
        let mut db = Postgres::open(&t, Duration::from_millis(200)).unwrap();
        let pid: i32 = db
            .client
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        let mut admin = client(&url);
        admin
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap();
        // Gone for sure before the store speaks again.
        let gone = |admin: &mut Client| -> bool {
            let n: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .unwrap()
                .get(0);
            n == 0
        };
        let start = std::time::Instant::now();
        while !gone(&mut admin) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "backend {pid} still there"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Unreachable, and the store names the server.
        let first = db.begin(Mode::Read).map(|_| ()).unwrap_err();
        assert!(
            matches!(&first, Error::Unavailable(m) if m.contains(&t.server())),
            "{first:?}"
        );
        let e = db.client.batch_execute("SELECT 1").unwrap_err();
        assert!(e.as_db_error().is_none(), "{e:?}");
        assert!(matches!(Error::from(e), Error::Unavailable(_)));
    }

    #[test]
    fn any_other_server_error_is_quoted() {
        let Some((url, _)) = fresh() else { return };
        let e = failing(&url, "SELECT * FROM tabla_que_no_existe");
        let Error::Other(msg) = Error::from(e) else {
            panic!()
        };
        assert_eq!(
            msg,
            tf(
                M::DbError,
                &[(
                    "err",
                    &crate::i18n::quote_long("relation \"tabla_que_no_existe\" does not exist")
                )]
            )
        );
    }

    /// A loopback port where one connection gets `answer`: just enough of
    /// a server for a client to reach a given failure.
    fn one_connection(answer: impl FnOnce(std::net::TcpStream) + Send + 'static) -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((c, _)) = l.accept() {
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                answer(c);
            }
        });
        port
    }

    /// Reads one start-up packet (length-prefixed, no type byte).
    fn read_startup(c: &mut std::net::TcpStream) {
        use std::io::Read;
        let mut len = [0u8; 4];
        c.read_exact(&mut len).unwrap();
        let mut rest = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        c.read_exact(&mut rest).unwrap();
    }

    fn loopback(port: u16, tls: PgTls) -> PgTarget {
        let mut t = target(&format!("postgresql://ana@127.0.0.1:{port}/recupera"));
        t.tls = tls;
        t
    }

    #[test]
    fn a_server_asking_for_a_password_we_do_not_have_is_refused_credentials() {
        use std::io::Write;
        let port = one_connection(|mut c| {
            read_startup(&mut c);
            // AuthenticationCleartextPassword.
            let _ = c.write_all(b"R\0\0\0\x08\0\0\0\x03");
            let _ = c.flush();
        });
        let mut t = loopback(port, PgTls::Off);
        t.password = None;
        let e = open_err(&t);
        let Error::Auth(msg) = &e else {
            panic!("{e:?}")
        };
        assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 78);
    }

    #[test]
    fn a_connection_reset_under_a_statement_is_unreachable() {
        use std::io::{Read, Write};
        let port = one_connection(|mut c| {
            read_startup(&mut c);
            // AuthenticationOk, ReadyForQuery (idle).
            c.write_all(b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I").unwrap();
            // The first byte of the client's query, then a reset.
            let mut b = [0u8; 1];
            let _ = c.read_exact(&mut b);
            let sock = socket2::SockRef::from(&c);
            let _ = sock.set_linger(Some(Duration::ZERO));
        });
        let mut c = Client::connect(
            &format!("host=127.0.0.1 port={port} user=ana dbname=recupera sslmode=disable"),
            NoTls,
        )
        .unwrap();
        let e = c.batch_execute("SELECT 1").unwrap_err();
        assert!(e.as_db_error().is_none(), "{e:?}");
        assert!(!e.is_closed(), "{e:?}");
        let e = Error::from(e);
        assert!(matches!(&e, Error::Unavailable(_)), "{e:?}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 69);
    }

    /// A server refusing the start-up with `code`, as PostgreSQL does
    /// when it starts or stops, crashed, or the password is wrong.
    fn refused_at_start_up(code: &'static str) -> Error {
        use std::io::Write;
        let port = one_connection(move |mut c| {
            read_startup(&mut c);
            let mut body = Vec::new();
            for (field, value) in [
                (b'S', "FATAL"),
                (b'V', "FATAL"),
                (b'C', code),
                (b'M', "refused for the test"),
            ] {
                body.push(field);
                body.extend_from_slice(value.as_bytes());
                body.push(0);
            }
            body.push(0);
            let mut msg = vec![b'E'];
            msg.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
            msg.extend_from_slice(&body);
            let _ = c.write_all(&msg);
            let _ = c.flush();
        });
        open_err(&loopback(port, PgTls::Off))
    }

    #[test]
    fn a_server_starting_stopping_or_recovering_is_unreachable() {
        // 57P03 starting up or shutting down, 57P02 crash recovery, 57P01
        // administrator shutdown.
        for code in ["57P03", "57P02", "57P01"] {
            let e = refused_at_start_up(code);
            assert!(
                matches!(&e, Error::Unavailable(m) if m.contains("refused for the test")),
                "{code}: {e:?}"
            );
            assert_eq!(crate::error::Error::from(e).exit_code(), 69, "{code}");
        }
    }

    #[test]
    fn a_wrong_password_is_refused_credentials() {
        let e = refused_at_start_up("28P01");
        assert!(matches!(&e, Error::Auth(_)), "{e:?}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 78);
    }

    #[test]
    fn a_certificate_from_an_unknown_authority_is_a_configuration_error() {
        use rcgen::{CertificateParams, KeyPair};
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use std::io::Write;
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let port = one_connection(move |mut c| {
            read_startup(&mut c); // SSLRequest
            c.write_all(b"S").unwrap();
            let mut tls = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            while tls.is_handshaking() {
                if tls.complete_io(&mut c).is_err() {
                    return;
                }
            }
        });
        let e = open_err(&loopback(port, PgTls::Verified));
        let Error::Config(msg) = &e else {
            panic!("{e:?}")
        };
        // The server named, the fix named, rustls's reason quoted.
        assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
        assert!(msg.contains("RECUPERA_DB_CA_FILE"), "{msg}");
        assert!(msg.to_lowercase().contains("certificate"), "{msg}");
        assert_eq!(crate::error::Error::from(e).exit_code(), 78);
    }

    /// The causes under an error, each once, outermost first.
    #[test]
    fn an_error_chain_names_each_cause_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let leaf = E("connection refused", None);
        let mid = E("error connecting: connection refused", Some(Box::new(leaf)));
        let top = E("db error", Some(Box::new(mid)));
        assert_eq!(
            error_chain(&top),
            "db error: error connecting: connection refused"
        );
        assert_eq!(error_chain(&E("alone", None)), "alone");
    }

    /// An account read in a write transaction stays locked until commit
    /// (so the limits read from it cannot be raced); one read in a read
    /// transaction does not.
    #[test]
    fn write_transactions_lock_the_accounts_they_read() {
        use crate::domain::account::AccountType;
        use crate::store::{InsertAccount, NewAccount};
        let Some((url, t)) = fresh() else { return };
        let mut db = Postgres::open(&t, Duration::from_millis(200)).unwrap();
        let nit = crate::domain::nit::Nit::parse("900102030").unwrap();
        let email = crate::domain::email::Email::parse("ana@example.com").unwrap();
        let mut tx = db.begin(Mode::Write).unwrap();
        let InsertAccount::Created(id) = tx
            .insert_account(&NewAccount {
                kind: AccountType::Cliente,
                nit: &nit,
                username: None,
                email: &email,
                name: None,
                lang: crate::domain::lang::Lang::Es,
                password_hash: None,
                now: 1000,
            })
            .unwrap()
        else {
            panic!("not created")
        };
        tx.commit().unwrap();
        let mut other = client(&url);
        let mut try_lock = || {
            other
                .query(
                    "SELECT id FROM accounts WHERE id = $1 FOR UPDATE NOWAIT",
                    &[&id],
                )
                .map_err(|e| code_of(&e))
        };
        for (mode, locked) in [(Mode::Read, false), (Mode::Write, true)] {
            let mut tx = db.begin(mode).unwrap();
            assert_eq!(tx.accounts_by_nit(None, &nit).unwrap().len(), 1);
            let r = try_lock();
            if locked {
                assert_eq!(r.unwrap_err(), Some(SqlState::LOCK_NOT_AVAILABLE));
            } else {
                assert_eq!(r.unwrap().len(), 1);
            }
            drop(tx);
        }
    }
}
