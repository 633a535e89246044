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
    if e.is_closed() || server.is_some() {
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
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(&e))?
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
        let client = match target.tls {
            PgTls::Off => {
                cfg.ssl_mode(postgres::config::SslMode::Disable);
                cfg.connect(NoTls)
            }
            PgTls::Verified => {
                cfg.ssl_mode(postgres::config::SslMode::Require);
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(target)?);
                cfg.connect(tls)
            }
        }
        .map_err(|e| connect_error(&e, &server, target))?;
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

    fn scrub(&mut self) -> Result<()> {
        // Dead row versions of the erased account disappear from the
        // tables' pages at the next vacuum; ask for it now.
        self.client
            .batch_execute("VACUUM accounts, codes, notices, audit")
            .map_err(Error::from)
    }
}

impl Txn for PgTxn<'_> {
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.flush_copy()?;
        let PgTxn { tx, .. } = *self;
        sent("COMMIT");
        Ok(tx.commit()?)
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
