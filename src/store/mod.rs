//! Storage: the only module that knows SQL.
//!
//! Invariants:
//! - [`Store::open`] takes a path; environment variables and defaults are
//!   resolved by the caller. A new file is created with mode 0600 (and its
//!   folders 0700) before SQLite touches it.
//! - A database newer than this program, or a file that is not a database,
//!   is refused before anything writes to it (WAL mode is only switched on
//!   after the version check, because switching it rewrites the header).
//! - Every connection gets `busy_timeout`, `foreign_keys` and WAL.
//! - Every write path goes through [`Store::write`]: one `BEGIN IMMEDIATE`
//!   transaction, committed only if the closure succeeds. Two processes can
//!   therefore never both spend one code: the state checks and the update
//!   happen under the same write lock.
//! - Methods speak the domain (accounts, codes, mail, audit), so another
//!   engine can be put behind the same methods without touching commands.

pub mod migrations;

use crate::domain::account::{Account, AccountType};
use crate::domain::email::Email;
use crate::domain::nit::Nit;
use crate::error::{Error, Result};
use crate::i18n::{Lang, M, tf};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::time::Duration;

pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Store {
    conn: Connection,
}

/// A write (or read) transaction; all domain-level SQL hangs off it.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
}

/// Who did something, for the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub agent: &'a str,
    pub account_id: Option<i64>,
    pub subject: Option<String>,
    pub event: &'a str,
    pub outcome: &'a str,
    pub detail: Option<String>,
}

impl<'a> AuditEntry<'a> {
    pub fn new(agent: &'a str, event: &'a str, outcome: &'a str) -> Self {
        AuditEntry {
            agent,
            account_id: None,
            subject: None,
            event,
            outcome,
            detail: None,
        }
    }

    pub fn account(mut self, id: Option<i64>) -> Self {
        self.account_id = id;
        self
    }

    pub fn subject(mut self, s: impl Into<String>) -> Self {
        self.subject = Some(s.into());
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub agent: String,
    pub account_id: Option<i64>,
    pub subject: Option<String>,
    pub event: String,
    pub outcome: String,
    pub detail: Option<String>,
}

pub struct NewAccount<'a> {
    pub kind: AccountType,
    pub nit: &'a Nit,
    pub username: Option<&'a str>,
    pub email: &'a Email,
    pub name: Option<&'a str>,
    pub lang: Lang,
    pub password_hash: Option<&'a str>,
    pub now: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum InsertAccount {
    Created(i64),
    Exists,
    UsernameTaken,
}

#[derive(Debug, Clone)]
pub struct LiveCode {
    pub id: i64,
    pub account_id: i64,
    pub hash: String,
    pub attempts: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CodeRow {
    pub id: i64,
    pub account_id: i64,
    pub kind: String,
    pub nit: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub attempts: i64,
    pub state: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    ResetCode,
    PasswordChanged,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::ResetCode => "reset_code",
            MailKind::PasswordChanged => "password_changed",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MailRow {
    pub id: i64,
    pub account_id: i64,
    pub code_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    pub created_at: i64,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    pub codes: u64,
    pub mails: u64,
    pub requests: u64,
}

/// What the login limiter says before a password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    /// Go on and verify; the attempt is already counted as a failure and is
    /// cleared if the password turns out right.
    Verify,
    Locked {
        until: i64,
    },
}

/// What the confirm limiter says before a code is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmGate {
    /// Verify; the attempt is counted (on the code and the account) and is
    /// refunded or cleared if the code turns out right.
    Verify,
    /// 5 wrong submissions: the code is dead.
    CodeDead,
    /// 20 consecutive failures: recovery is off until `user unlock`.
    ChannelDisabled,
}

/// Abuse limits, as stored-state rules.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub code_attempts: i64,
    pub account_confirm_failures: i64,
    pub login_failures: i64,
    pub login_lock_base_secs: i64,
    pub login_lock_max_secs: i64,
    pub request_min_interval_secs: i64,
    pub requests_per_day: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            code_attempts: 5,
            account_confirm_failures: 20,
            login_failures: 5,
            login_lock_base_secs: 15 * 60,
            login_lock_max_secs: 24 * 3600,
            request_min_interval_secs: 60,
            requests_per_day: 5,
        }
    }
}

impl Limits {
    /// Lock length after the `failures`-th consecutive failure: 15 min at
    /// the 5th, doubling per further failure, at most 24 h.
    pub fn login_lock_secs(&self, failures: i64) -> Option<i64> {
        if failures < self.login_failures {
            return None;
        }
        let doublings = (failures - self.login_failures).min(20) as u32;
        Some(
            self.login_lock_base_secs
                .saturating_mul(1i64 << doublings)
                .min(self.login_lock_max_secs),
        )
    }
}

fn db_open_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::Db(tf(
        M::DbCannotOpen,
        &[("path", &path.display()), ("err", e)],
    ))
}

/// Maps errors met while opening: "not a database" and friends get the
/// message that says the file was left alone.
fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                return Error::Db(tf(M::DbNotDb, &[("path", &path.display())]));
            }
            ErrorCode::ReadOnly => {
                return Error::Db(tf(M::DbReadOnly, &[("path", &path.display())]));
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => return e.into(),
            _ => {}
        }
    }
    db_open_error(path, &e)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Another process created it between our check and now: fine.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(|_| ())
}

impl Store {
    /// Opens (creating if needed) the database at `path`, and brings its
    /// schema up to date.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Store> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(Error::Db(tf(M::DbIsDir, &[("path", &path.display())])));
            }
            // Refuse a file whose owner made it read-only, even when running
            // as root (who could write it anyway): the mode is the intent.
            Ok(meta) if meta.permissions().readonly() => {
                return Err(Error::Db(tf(M::DbReadOnly, &[("path", &path.display())])));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_private_file(path).map_err(|e| db_open_error(path, &e))?;
            }
            Err(e) => return Err(db_open_error(path, &e)),
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(path, e))?;
        let mut store = Store { conn };
        store.prepare(Some(path), busy_timeout)?;
        Ok(store)
    }

    /// A private in-memory database (unit tests, benchmarks).
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store { conn };
        store.prepare(None, DEFAULT_BUSY_TIMEOUT)?;
        Ok(store)
    }

    fn prepare(&mut self, path: Option<&Path>, busy_timeout: Duration) -> Result<()> {
        let shown = path.unwrap_or(Path::new(":memory:"));
        let err = |e| open_error(shown, e);
        self.conn.busy_timeout(busy_timeout).map_err(err)?;
        // First read of the file: fails with NOTADB on random bytes.
        let version = self.user_version().map_err(err)?;
        let latest = migrations::latest();
        // Another program's SQLite file: never migrate it.
        let app_id: i64 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(err)?;
        let foreign = if version == 0 {
            self.conn
                .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(err)?
                > 0
        } else {
            app_id != migrations::APPLICATION_ID
        };
        if foreign {
            return Err(Error::Db(tf(M::DbNotDb, &[("path", &shown.display())])));
        }
        if version > latest {
            return Err(Error::Db(tf(
                M::DbNewer,
                &[
                    ("path", &shown.display()),
                    ("found", &version),
                    ("known", &latest),
                ],
            )));
        }
        if path.is_some() {
            let mode: String = self
                .conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                self.conn
                    .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
                    .map_err(err)?;
            }
            // NORMAL, not FULL: in WAL mode a commit then costs no fsync, so
            // a path that writes more rows (a known account) takes no longer
            // than one that writes fewer (an unknown one): with FULL, each
            // extra commit was an fsync an attacker could time. The database
            // stays consistent after a power cut; only the last commits may
            // be lost. Connections do not checkpoint on close either (a short
            // process would pay it on every command): SQLite's automatic
            // checkpoint keeps the WAL bounded and `codes purge` truncates it.
            self.conn
                .execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(err)?;
            self.conn
                .set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                    true,
                )
                .map_err(err)?;
        }
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON")
            .map_err(err)?;
        self.migrate()
    }

    fn user_version(&self) -> rusqlite::Result<i64> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.user_version()?)
    }

    /// Applies the missing migrations, each in its own transaction. Safe to
    /// run from several processes at once: the version is re-read under the
    /// write lock.
    fn migrate(&mut self) -> Result<()> {
        self.migrate_to(migrations::latest())
    }

    /// Migrates up to `target` (tests build old databases with it).
    pub fn migrate_to(&mut self, target: i64) -> Result<()> {
        loop {
            if self.user_version()? >= target {
                return Ok(());
            }
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if v >= target {
                return Ok(());
            }
            let sql = migrations::MIGRATIONS[v as usize];
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))?;
            tx.commit()?;
        }
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction; commits if it returns
    /// `Ok`, rolls back otherwise.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let wrapped = Tx { tx };
        let out = f(&wrapped)?;
        wrapped.tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    pub fn read<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        let wrapped = Tx { tx };
        let out = f(&wrapped)?;
        wrapped.tx.commit()?;
        Ok(out)
    }

    /// Folds the WAL back into the database file, best effort (the cron
    /// purge calls it; connections do not checkpoint on close).
    pub fn checkpoint(&self) {
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    /// Direct access for tests that must build odd states (old hashes).
    #[doc(hidden)]
    pub fn raw(&self) -> &Connection {
        &self.conn
    }
}

const ACCOUNT_COLUMNS: &str = "id, kind, nit, username, email, name, lang, password_hash, \
     created_at, password_changed_at, last_login_at, failed_logins, login_locked_until, \
     failed_confirms";

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let kind: String = r.get(1)?;
    let lang: String = r.get(6)?;
    Ok(Account {
        id: r.get(0)?,
        kind: AccountType::from_stored(&kind).unwrap_or(AccountType::Cliente),
        nit: Nit::from_stored(r.get(2)?),
        username: r.get(3)?,
        email: Email::from_stored(r.get(4)?),
        name: r.get(5)?,
        lang: Lang::from_stored(&lang),
        password_hash: r.get(7)?,
        created_at: r.get(8)?,
        password_changed_at: r.get(9)?,
        last_login_at: r.get(10)?,
        failed_logins: r.get(11)?,
        login_locked_until: r.get(12)?,
        failed_confirms: r.get(13)?,
    })
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl Tx<'_> {
    // ----- accounts -----

    pub fn insert_account(&self, a: &NewAccount<'_>) -> Result<InsertAccount> {
        let exists: bool = self.tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE kind = ?1 AND nit = ?2)",
            params![a.kind.as_str(), a.nit.as_str()],
            |r| r.get(0),
        )?;
        if exists {
            return Ok(InsertAccount::Exists);
        }
        if let Some(u) = a.username {
            let taken: bool = self.tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE username = ?1 COLLATE NOCASE)",
                params![u],
                |r| r.get(0),
            )?;
            if taken {
                return Ok(InsertAccount::UsernameTaken);
            }
        }
        let res = self.tx.execute(
            "INSERT INTO accounts (kind, nit, username, email, name, lang, password_hash, \
             created_at, password_changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                a.kind.as_str(),
                a.nit.as_str(),
                a.username,
                a.email.as_str(),
                a.name,
                a.lang.as_str(),
                a.password_hash,
                a.now,
                a.password_hash.map(|_| a.now),
            ],
        );
        match res {
            Ok(_) => Ok(InsertAccount::Created(self.tx.last_insert_rowid())),
            Err(e) if is_constraint(&e) => Ok(InsertAccount::Exists),
            Err(e) => Err(e.into()),
        }
    }

    pub fn account(&self, id: i64) -> Result<Option<Account>> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
                params![id],
                account_from_row,
            )
            .optional()?)
    }

    /// Accounts with this NIT, of one type or of both.
    pub fn accounts_by_nit(&self, kind: Option<AccountType>, nit: &Nit) -> Result<Vec<Account>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE nit = ?1 \
             AND (?2 IS NULL OR kind = ?2) ORDER BY kind"
        ))?;
        let rows = stmt.query_map(
            params![nit.as_str(), kind.map(|k| k.as_str())],
            account_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn accounts_by_username(
        &self,
        kind: Option<AccountType>,
        username: &str,
    ) -> Result<Vec<Account>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = ?1 COLLATE NOCASE \
             AND (?2 IS NULL OR kind = ?2)"
        ))?;
        let rows = stmt.query_map(
            params![username, kind.map(|k| k.as_str())],
            account_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn accounts_by_email(
        &self,
        kind: Option<AccountType>,
        email: &Email,
    ) -> Result<Vec<Account>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = ?1 COLLATE NOCASE \
             AND (?2 IS NULL OR kind = ?2) ORDER BY id"
        ))?;
        let rows = stmt.query_map(
            params![email.as_str(), kind.map(|k| k.as_str())],
            account_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Calls `f` for each account, in id order, one row at a time (the list
    /// is never held in memory).
    pub fn for_each_account(
        &self,
        kind: Option<AccountType>,
        mut f: impl FnMut(Account) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE (?1 IS NULL OR kind = ?1) ORDER BY id"
        ))?;
        let mut rows = stmt.query(params![kind.map(|k| k.as_str())])?;
        while let Some(row) = rows.next()? {
            f(account_from_row(row)?)?;
        }
        Ok(())
    }

    /// Counts the pending, unexpired codes of an account.
    pub fn pending_codes(&self, account_id: i64, now: i64) -> Result<i64> {
        Ok(self.tx.query_row(
            "SELECT COUNT(*) FROM codes WHERE account_id = ?1 AND state = 'pending' AND ends_at > ?2",
            params![account_id, now],
            |r| r.get(0),
        )?)
    }

    /// Clears every lock and failure counter (`user unlock`).
    pub fn unlock(&self, account_id: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE accounts SET failed_logins = 0, login_locked_until = NULL, failed_confirms = 0 \
             WHERE id = ?1",
            params![account_id],
        )?;
        Ok(())
    }

    // ----- login -----

    /// Counts a login attempt before the password is checked, so parallel
    /// guesses cannot all slip in under the limit. Locked accounts are not
    /// counted (an attacker cannot stretch a lock by hammering it).
    pub fn login_gate(&self, account_id: i64, now: i64, limits: &Limits) -> Result<LoginGate> {
        let (failures, locked_until): (i64, Option<i64>) = self.tx.query_row(
            "SELECT failed_logins, login_locked_until FROM accounts WHERE id = ?1",
            params![account_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some(until) = locked_until
            && until > now
        {
            return Ok(LoginGate::Locked { until });
        }
        let failures = failures + 1;
        let lock = limits.login_lock_secs(failures).map(|s| now + s);
        self.tx.execute(
            "UPDATE accounts SET failed_logins = ?2, login_locked_until = COALESCE(?3, login_locked_until) \
             WHERE id = ?1",
            params![account_id, failures, lock],
        )?;
        Ok(LoginGate::Verify)
    }

    /// A right password: clear the counters, stamp the login, and upgrade
    /// the hash if one was computed, but only if the password was not
    /// changed meanwhile by another process.
    pub fn login_success(
        &self,
        account_id: i64,
        now: i64,
        rehash: Option<(&str, &str)>,
    ) -> Result<bool> {
        self.tx.execute(
            "UPDATE accounts SET failed_logins = 0, login_locked_until = NULL, last_login_at = ?2 \
             WHERE id = ?1",
            params![account_id, now],
        )?;
        if let Some((old, new)) = rehash {
            let n = self.tx.execute(
                "UPDATE accounts SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                params![account_id, old, new],
            )?;
            return Ok(n == 1);
        }
        Ok(false)
    }

    // ----- recovery codes -----

    /// Granted requests of an account since `since`, and the latest one.
    pub fn recent_requests(&self, account_id: i64, since: i64) -> Result<(i64, Option<i64>)> {
        Ok(self.tx.query_row(
            "SELECT COUNT(*), MAX(at) FROM reset_requests WHERE account_id = ?1 AND at > ?2",
            params![account_id, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Stores a new code (its hash), kills the account's older codes and
    /// records the request for the rate limits.
    pub fn insert_code(
        &self,
        account_id: i64,
        hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<i64> {
        self.tx.execute(
            "UPDATE codes SET state = 'replaced', ends_at = MIN(ends_at, ?2) \
             WHERE account_id = ?1 AND state = 'pending'",
            params![account_id, now],
        )?;
        self.tx.execute(
            "INSERT INTO codes (account_id, code_hash, created_at, expires_at, ends_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![account_id, hash, now, expires_at],
        )?;
        let id = self.tx.last_insert_rowid();
        self.tx.execute(
            "INSERT INTO reset_requests (account_id, at) VALUES (?1, ?2)",
            params![account_id, now],
        )?;
        Ok(id)
    }

    /// Replaces the hash of a pending code (mail retry re-keys a code nobody
    /// has seen, because the clear code was never stored).
    pub fn rekey_code(&self, code_id: i64, hash: &str, now: i64) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE codes SET code_hash = ?2 WHERE id = ?1 AND state = 'pending' AND ends_at > ?3",
            params![code_id, hash, now],
        )?;
        Ok(n == 1)
    }

    /// The usable code of an account, if any (at most one: a new code kills
    /// the older ones).
    pub fn live_code(&self, account_id: i64, now: i64) -> Result<Option<LiveCode>> {
        Ok(self
            .tx
            .query_row(
                "SELECT id, account_id, code_hash, attempts, created_at, expires_at FROM codes \
                 WHERE account_id = ?1 AND state = 'pending' AND ends_at > ?2 \
                 ORDER BY id DESC LIMIT 1",
                params![account_id, now],
                |r| {
                    Ok(LiveCode {
                        id: r.get(0)?,
                        account_id: r.get(1)?,
                        hash: r.get(2)?,
                        attempts: r.get(3)?,
                        created_at: r.get(4)?,
                        expires_at: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn code_created_at(&self, code_id: i64) -> Result<Option<i64>> {
        Ok(self
            .tx
            .query_row(
                "SELECT created_at FROM codes WHERE id = ?1",
                params![code_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Counts a confirmation attempt on the account (and on its code, if it
    /// has one) *before* the code is checked. Refuses when the code has had
    /// its 5 tries or the account its 20 consecutive failures.
    pub fn confirm_gate(
        &self,
        account_id: i64,
        code_id: Option<i64>,
        limits: &Limits,
    ) -> Result<ConfirmGate> {
        let failures: i64 = self.tx.query_row(
            "SELECT failed_confirms FROM accounts WHERE id = ?1",
            params![account_id],
            |r| r.get(0),
        )?;
        if failures >= limits.account_confirm_failures {
            return Ok(ConfirmGate::ChannelDisabled);
        }
        self.tx.execute(
            "UPDATE accounts SET failed_confirms = failed_confirms + 1 WHERE id = ?1",
            params![account_id],
        )?;
        if let Some(code_id) = code_id {
            let n = self.tx.execute(
                "UPDATE codes SET attempts = attempts + 1 \
                 WHERE id = ?1 AND state = 'pending' AND attempts < ?2",
                params![code_id, limits.code_attempts],
            )?;
            if n == 0 {
                return Ok(ConfirmGate::CodeDead);
            }
        }
        Ok(ConfirmGate::Verify)
    }

    /// After a wrong code: a code that has used its tries dies now.
    pub fn confirm_failed(&self, code_id: i64, now: i64, limits: &Limits) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE codes SET state = 'exhausted', ends_at = MIN(ends_at, ?2) \
             WHERE id = ?1 AND state = 'pending' AND attempts >= ?3",
            params![code_id, now, limits.code_attempts],
        )?;
        Ok(n == 1)
    }

    /// A right code whose new password the policy refused: the attempt does
    /// not count, the code stays usable.
    pub fn confirm_refund(&self, account_id: i64, code_id: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE codes SET attempts = MAX(attempts - 1, 0) WHERE id = ?1",
            params![code_id],
        )?;
        self.tx.execute(
            "UPDATE accounts SET failed_confirms = MAX(failed_confirms - 1, 0) WHERE id = ?1",
            params![account_id],
        )?;
        Ok(())
    }

    /// Spends the code and sets the password, all or nothing. Returns false
    /// (and changes nothing) if another process spent the code first.
    pub fn confirm_success(
        &self,
        account_id: i64,
        code_id: i64,
        password_hash: &str,
        now: i64,
    ) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE codes SET state = 'used', ends_at = MIN(ends_at, ?3) \
             WHERE id = ?1 AND account_id = ?2 AND state = 'pending' AND ends_at > ?3",
            params![code_id, account_id, now],
        )?;
        if n != 1 {
            return Ok(false);
        }
        self.tx.execute(
            "UPDATE codes SET state = 'replaced', ends_at = MIN(ends_at, ?2) \
             WHERE account_id = ?1 AND state = 'pending'",
            params![account_id, now],
        )?;
        self.tx.execute(
            "UPDATE accounts SET password_hash = ?2, password_changed_at = ?3, failed_confirms = 0, \
             failed_logins = 0, login_locked_until = NULL WHERE id = ?1",
            params![account_id, password_hash, now],
        )?;
        Ok(true)
    }

    /// Calls `f` for each code still stored, newest first.
    pub fn for_each_code(&self, mut f: impl FnMut(CodeRow) -> Result<()>) -> Result<()> {
        let mut stmt = self.tx.prepare(
            "SELECT c.id, c.account_id, a.kind, a.nit, c.created_at, c.expires_at, c.attempts, \
             c.state FROM codes c JOIN accounts a ON a.id = c.account_id ORDER BY c.id DESC",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(CodeRow {
                id: r.get(0)?,
                account_id: r.get(1)?,
                kind: r.get(2)?,
                nit: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
                attempts: r.get(6)?,
                state: r.get(7)?,
            })?;
        }
        Ok(())
    }

    /// Counts what a purge would delete: finished codes (expired, used,
    /// replaced, exhausted), their mail, finished notices and request-log
    /// rows past the 24 h window.
    pub fn purge_counts(&self, now: i64, request_window: i64) -> Result<PurgeCounts> {
        let horizon = now - request_window;
        let codes: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM codes WHERE ends_at <= ?1",
            params![now],
            |r| r.get(0),
        )?;
        let mails: i64 = self.tx.query_row(
            "SELECT (SELECT COUNT(*) FROM mail_queue m JOIN codes c ON c.id = m.code_id \
             WHERE c.ends_at <= ?1) + (SELECT COUNT(*) FROM mail_queue WHERE code_id IS NULL \
             AND finished_at IS NOT NULL AND finished_at <= ?1)",
            params![now],
            |r| r.get(0),
        )?;
        let requests: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM reset_requests WHERE at <= ?1",
            params![horizon],
            |r| r.get(0),
        )?;
        Ok(PurgeCounts {
            codes: codes as u64,
            mails: mails as u64,
            requests: requests as u64,
        })
    }

    /// Deletes at most `limit` finished codes (oldest end first) with their
    /// mail, at most `limit` finished notices and at most `limit` request-log
    /// rows past the window. The caller repeats it, one transaction per
    /// batch, until a batch comes back short: the write lock is never held
    /// for more than one batch, so a backlog of millions does not make
    /// concurrent commands time out.
    pub fn purge_batch(&self, now: i64, request_window: i64, limit: u64) -> Result<PurgeCounts> {
        let limit = limit.min(i64::MAX as u64) as i64;
        let batch = "SELECT id FROM codes WHERE ends_at <= ?1 ORDER BY ends_at LIMIT ?2";
        let mut mails = self.tx.execute(
            &format!("DELETE FROM mail_queue WHERE code_id IN ({batch})"),
            params![now, limit],
        )?;
        let codes = self.tx.execute(
            &format!("DELETE FROM codes WHERE id IN ({batch})"),
            params![now, limit],
        )?;
        mails += self.tx.execute(
            "DELETE FROM mail_queue WHERE id IN (SELECT id FROM mail_queue \
             WHERE code_id IS NULL AND finished_at IS NOT NULL AND finished_at <= ?1 LIMIT ?2)",
            params![now, limit],
        )?;
        let requests = self.tx.execute(
            "DELETE FROM reset_requests WHERE id IN \
             (SELECT id FROM reset_requests WHERE at <= ?1 ORDER BY at LIMIT ?2)",
            params![now - request_window, limit],
        )?;
        Ok(PurgeCounts {
            codes: codes as u64,
            mails: mails as u64,
            requests: requests as u64,
        })
    }

    // ----- mail queue -----

    /// Queues a message, already claimed by the process that will deliver
    /// it right after the commit.
    pub fn enqueue_mail(
        &self,
        account_id: i64,
        code_id: Option<i64>,
        kind: MailKind,
        recipient: &Email,
        now: i64,
        claim: (&str, i64),
    ) -> Result<i64> {
        self.tx.execute(
            "INSERT INTO mail_queue (account_id, code_id, kind, recipient, created_at, claim, \
             claimed_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                account_id,
                code_id,
                kind.as_str(),
                recipient.as_str(),
                now,
                claim.0,
                claim.1
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Takes a queued message nobody holds (no claim, or one that lapsed).
    pub fn claim_mail(&self, id: i64, token: &str, now: i64, until: i64) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE mail_queue SET claim = ?2, claimed_until = ?4 WHERE id = ?1 \
             AND state = 'queued' AND (claimed_until IS NULL OR claimed_until <= ?3)",
            params![id, token, now, until],
        )?;
        Ok(n == 1)
    }

    /// Extends a claim this process holds; false if it is not (or no
    /// longer) ours.
    pub fn renew_claim(&self, id: i64, token: &str, until: i64) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE mail_queue SET claimed_until = ?3 WHERE id = ?1 AND state = 'queued' \
             AND claim = ?2",
            params![id, token, until],
        )?;
        Ok(n == 1)
    }

    pub fn mail(&self, id: i64) -> Result<Option<MailRow>> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {MAIL_COLUMNS} FROM mail_queue WHERE id = ?1"),
                params![id],
                mail_from_row,
            )
            .optional()?)
    }

    /// Ids of queued messages, oldest first.
    pub fn queued_mail_ids(&self) -> Result<Vec<i64>> {
        let mut stmt = self
            .tx
            .prepare("SELECT id FROM mail_queue WHERE state = 'queued' ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A delivery went: only the claim's holder records it.
    pub fn mail_sent(&self, id: i64, token: &str, now: i64) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE mail_queue SET state = 'sent', attempts = attempts + 1, last_error = NULL, \
             finished_at = ?3, claim = NULL, claimed_until = NULL WHERE id = ?1 AND claim = ?2",
            params![id, token, now],
        )?;
        Ok(n == 1)
    }

    /// A delivery failed: the message stays queued, free for the next try.
    pub fn mail_failed(&self, id: i64, token: &str, error: &str) -> Result<bool> {
        let n = self.tx.execute(
            "UPDATE mail_queue SET attempts = attempts + 1, last_error = ?3, claim = NULL, \
             claimed_until = NULL WHERE id = ?1 AND claim = ?2",
            params![id, token, error],
        )?;
        Ok(n == 1)
    }

    pub fn mail_dropped(&self, id: i64, reason: &str, now: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE mail_queue SET state = 'dropped', last_error = ?2, finished_at = ?3, \
             claim = NULL, claimed_until = NULL WHERE id = ?1",
            params![id, reason, now],
        )?;
        Ok(())
    }

    pub fn for_each_mail(&self, mut f: impl FnMut(MailRow) -> Result<()>) -> Result<()> {
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {MAIL_COLUMNS} FROM mail_queue ORDER BY id DESC"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(mail_from_row(r)?)?;
        }
        Ok(())
    }

    // ----- audit -----

    pub fn audit(&self, e: &AuditEntry<'_>, now: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO audit (at, agent, account_id, subject, event, outcome, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                now,
                e.agent,
                e.account_id,
                e.subject,
                e.event,
                e.outcome,
                e.detail
            ])?;
        Ok(())
    }

    /// Newest first; `account_id` filters; `limit` caps.
    pub fn for_each_audit(
        &self,
        account_id: Option<i64>,
        limit: Option<u64>,
        mut f: impl FnMut(AuditRow) -> Result<()>,
    ) -> Result<()> {
        let limit = limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64);
        let mut stmt = self.tx.prepare(
            "SELECT id, at, agent, account_id, subject, event, outcome, detail FROM audit \
             WHERE (?1 IS NULL OR account_id = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![account_id, limit])?;
        while let Some(r) = rows.next()? {
            f(AuditRow {
                id: r.get(0)?,
                at: r.get(1)?,
                agent: r.get(2)?,
                account_id: r.get(3)?,
                subject: r.get(4)?,
                event: r.get(5)?,
                outcome: r.get(6)?,
                detail: r.get(7)?,
            })?;
        }
        Ok(())
    }
}

const MAIL_COLUMNS: &str = "id, account_id, code_id, kind, recipient, created_at, state, attempts, last_error, finished_at";

fn mail_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailRow> {
    Ok(MailRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        code_id: r.get(2)?,
        kind: r.get(3)?,
        recipient: r.get(4)?,
        created_at: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open_in_memory().unwrap()
    }

    fn add(s: &mut Store, kind: AccountType, nit: &str) -> i64 {
        let nit = Nit::parse(nit).unwrap();
        let email = Email::parse("juan@example.co").unwrap();
        s.write(|tx| {
            match tx.insert_account(&NewAccount {
                kind,
                nit: &nit,
                username: None,
                email: &email,
                name: None,
                lang: Lang::Es,
                password_hash: None,
                now: 1000,
            })? {
                InsertAccount::Created(id) => Ok(id),
                other => panic!("{other:?}"),
            }
        })
        .unwrap()
    }

    #[test]
    fn every_migration_applies_in_order_on_an_empty_database() {
        let conn = Connection::open_in_memory().unwrap();
        let mut s = Store { conn };
        for v in 1..=migrations::latest() {
            s.migrate_to(v).unwrap();
            assert_eq!(s.schema_version().unwrap(), v);
        }
        // Idempotent.
        s.migrate_to(migrations::latest()).unwrap();
        assert_eq!(s.schema_version().unwrap(), migrations::latest());
    }

    #[test]
    fn upgrading_from_version_1_keeps_the_queue() {
        let conn = Connection::open_in_memory().unwrap();
        let mut s = Store { conn };
        s.migrate_to(1).unwrap();
        s.raw()
            .execute_batch(
                "INSERT INTO accounts (id, kind, nit, email, created_at) \
                 VALUES (1, 'cliente', '900102030', 'a@example.co', 0); \
                 INSERT INTO mail_queue (account_id, kind, recipient, created_at) \
                 VALUES (1, 'password_changed', 'a@example.co', 0);",
            )
            .unwrap();
        s.migrate_to(migrations::latest()).unwrap();
        let ids = s.read(|tx| tx.queued_mail_ids()).unwrap();
        assert_eq!(ids.len(), 1);
        // The old row has no claim: anyone may take it.
        assert!(s.write(|tx| tx.claim_mail(ids[0], "t", 10, 20)).unwrap());
        assert!(!s.write(|tx| tx.claim_mail(ids[0], "u", 15, 30)).unwrap());
        assert!(s.write(|tx| tx.claim_mail(ids[0], "u", 20, 30)).unwrap());
    }

    #[test]
    fn one_account_per_type_and_nit() {
        let mut s = store();
        add(&mut s, AccountType::Cliente, "900102030");
        add(&mut s, AccountType::Proveedor, "900102030");
        let nit = Nit::parse("900102030").unwrap();
        let email = Email::parse("x@example.co").unwrap();
        let again = s
            .write(|tx| {
                tx.insert_account(&NewAccount {
                    kind: AccountType::Cliente,
                    nit: &nit,
                    username: None,
                    email: &email,
                    name: None,
                    lang: Lang::Es,
                    password_hash: None,
                    now: 0,
                })
            })
            .unwrap();
        assert_eq!(again, InsertAccount::Exists);
        let both = s.read(|tx| tx.accounts_by_nit(None, &nit)).unwrap();
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn a_new_code_kills_the_old_one_and_purge_is_idempotent() {
        let mut s = store();
        let id = add(&mut s, AccountType::Cliente, "900102030");
        let c1 = s.write(|tx| tx.insert_code(id, "h1", 100, 200)).unwrap();
        let c2 = s.write(|tx| tx.insert_code(id, "h2", 150, 250)).unwrap();
        let live = s.read(|tx| tx.live_code(id, 160)).unwrap().unwrap();
        assert_eq!(live.id, c2);
        assert_ne!(live.id, c1, "the first code is dead");
        // At 160: c1 ended at 150 (replaced), c2 lives until 250.
        let dry = s.read(|tx| tx.purge_counts(160, 86_400)).unwrap();
        assert_eq!(dry.codes, 1);
        let done = s.write(|tx| tx.purge_batch(160, 86_400, 100)).unwrap();
        assert_eq!(done.codes, 1);
        assert_eq!(
            s.write(|tx| tx.purge_batch(160, 86_400, 100))
                .unwrap()
                .codes,
            0
        );
        // After its expiry, c2 goes too.
        assert_eq!(
            s.write(|tx| tx.purge_batch(250, 86_400, 100))
                .unwrap()
                .codes,
            1
        );
    }

    #[test]
    fn purge_batches_take_the_oldest_first_and_add_up() {
        let mut s = store();
        let ids: Vec<i64> = ["900102030", "800003122", "830015428"]
            .iter()
            .map(|n| add(&mut s, AccountType::Cliente, n))
            .collect();
        let email = Email::parse("juan@example.co").unwrap();
        let mut code_ids = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            for j in 0..3 {
                let t = (i * 10 + j) as i64;
                let c = s.write(|tx| tx.insert_code(*id, "h", t, t + 100)).unwrap();
                s.write(|tx| {
                    tx.enqueue_mail(*id, Some(c), MailKind::ResetCode, &email, t, ("x", t))
                })
                .unwrap();
                code_ids.push(c);
            }
        }
        // Every code has ended by 1000 (replaced or expired).
        let total = s.read(|tx| tx.purge_counts(1000, 86_400)).unwrap();
        assert_eq!((total.codes, total.mails), (9, 9));
        let first = s.write(|tx| tx.purge_batch(1000, 86_400, 4)).unwrap();
        assert_eq!((first.codes, first.mails), (4, 4));
        let mut sum = first;
        loop {
            let b = s.write(|tx| tx.purge_batch(1000, 86_400, 4)).unwrap();
            sum.codes += b.codes;
            sum.mails += b.mails;
            if b.codes < 4 {
                break;
            }
        }
        assert_eq!((sum.codes, sum.mails), (9, 9));
        let left = s.read(|tx| tx.purge_counts(1000, 86_400)).unwrap();
        assert_eq!((left.codes, left.mails), (0, 0));
    }

    #[test]
    fn rollback_on_error_leaves_nothing() {
        let mut s = store();
        let id = add(&mut s, AccountType::Cliente, "900102030");
        let r: Result<()> = s.write(|tx| {
            tx.insert_code(id, "h", 1, 2)?;
            Err(Error::Refused("stop".into()))
        });
        assert!(r.is_err());
        let n: i64 = s
            .raw()
            .query_row("SELECT COUNT(*) FROM codes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn confirm_gate_counts_before_checking() {
        let mut s = store();
        let limits = Limits::default();
        let id = add(&mut s, AccountType::Cliente, "900102030");
        let c = s.write(|tx| tx.insert_code(id, "h", 100, 10_000)).unwrap();
        for _ in 0..5 {
            assert_eq!(
                s.write(|tx| tx.confirm_gate(id, Some(c), &limits)).unwrap(),
                ConfirmGate::Verify
            );
        }
        assert_eq!(
            s.write(|tx| tx.confirm_gate(id, Some(c), &limits)).unwrap(),
            ConfirmGate::CodeDead
        );
        assert!(s.write(|tx| tx.confirm_failed(c, 200, &limits)).unwrap());
        assert!(s.read(|tx| tx.live_code(id, 200)).unwrap().is_none());
        for _ in 6..20 {
            s.write(|tx| tx.confirm_gate(id, None, &limits)).unwrap();
        }
        assert_eq!(
            s.write(|tx| tx.confirm_gate(id, None, &limits)).unwrap(),
            ConfirmGate::ChannelDisabled
        );
        s.write(|tx| tx.unlock(id)).unwrap();
        assert_eq!(
            s.write(|tx| tx.confirm_gate(id, None, &limits)).unwrap(),
            ConfirmGate::Verify
        );
    }

    #[test]
    fn login_lock_doubles_and_caps() {
        let l = Limits::default();
        assert_eq!(l.login_lock_secs(4), None);
        assert_eq!(l.login_lock_secs(5), Some(900));
        assert_eq!(l.login_lock_secs(6), Some(1800));
        assert_eq!(l.login_lock_secs(7), Some(3600));
        assert_eq!(l.login_lock_secs(12), Some(86_400));
        assert_eq!(l.login_lock_secs(1000), Some(86_400));
    }
}
