//! The SQLite engine: a local file (or memory, for unit tests).
//!
//! Invariants:
//! - [`Sqlite::open`] takes a path; environment variables and defaults are
//!   resolved by the caller. A new file is created with mode 0600 (and its
//!   folders 0700) before SQLite touches it; a folder it had to create is
//!   removed again if the open then fails.
//! - A database newer than this program, another program's file, or a file
//!   that is not a database is refused before anything writes to it (WAL
//!   mode is only switched on after the checks, because switching it
//!   rewrites the header).
//! - Every connection gets a busy handler (a retry every millisecond until
//!   the busy timeout), `foreign_keys` and WAL.
//! - A write transaction is `BEGIN IMMEDIATE`: it holds the write lock from
//!   its first statement, so the state checks and the updates of a limit, or
//!   the spending of a code, happen under one lock.

mod accounts;
mod audit;
mod codes;
mod mail;
pub mod migrations;
mod whole;

use super::{Engine, Error, Mode, Result, Storage, Txn};
use crate::i18n::{M, t, tf};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Sqlite {
    conn: Connection,
    path: Option<PathBuf>,
}

/// A transaction; its operations live in one file per aggregate.
pub struct SqliteTxn<'c> {
    tx: rusqlite::Transaction<'c>,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    return Error::Busy(t(M::DbBusy).to_string());
                }
                ErrorCode::ReadOnly => return Error::Corrupt(t(M::DbReadOnlyAny).to_string()),
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                    return Error::Corrupt(t(M::DbCorrupt).to_string());
                }
                _ => {}
            }
        }
        Error::Other(tf(M::DbError, &[("err", &e)]))
    }
}

fn db_open_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::Other(tf(
        M::DbCannotOpen,
        &[("path", &crate::i18n::shown_path(path)), ("err", e)],
    ))
}

/// Maps errors met while opening: "not a database" and friends get the
/// message that says the file was left alone.
fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    let shown = crate::i18n::shown_path(path);
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                return Error::Corrupt(tf(M::DbNotDb, &[("path", &shown)]));
            }
            ErrorCode::ReadOnly => {
                return Error::Corrupt(tf(M::DbReadOnly, &[("path", &shown)]));
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => return e.into(),
            _ => {}
        }
    }
    db_open_error(path, &e)
}

/// The folders `create_dir_all` would make for `dir`, outermost first, so
/// a failed open can remove exactly what it created.
fn missing_ancestors(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        out.push(d.to_path_buf());
        cur = d.parent();
    }
    out.reverse();
    out
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

/// A database file others can read or write is tightened to 0600 when this
/// user owns it (with its `-wal` and `-shm`, which SQLite gives the same
/// mode), and the change is said on stderr; a file owned by someone else is
/// left as it is, with a warning.
#[cfg(unix)]
fn tighten(path: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.mode() & 0o077 == 0 {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let shown = crate::i18n::shown_path(path);
    if meta.uid() == me {
        let mut done = true;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            if p.exists() {
                done &=
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).is_ok();
            }
        }
        if done {
            crate::ui::warn(&tf(
                M::DbModeTightened,
                &[
                    ("path", &shown),
                    ("mode", &format!("{:o}", meta.mode() & 0o777)),
                ],
            ));
            return;
        }
    }
    crate::ui::warn(&tf(
        M::DbModeOpen,
        &[
            ("path", &shown),
            ("mode", &format!("{:o}", meta.mode() & 0o777)),
        ],
    ));
}

/// Before an existing file is opened. One that belongs to another user is
/// refused when it is empty (it is nobody's database yet: ours would be
/// written into a file its maker can read, as in a shared folder where
/// someone ran `touch`) or when every user can read or write it. An empty
/// one of ours that others could read is made private first, so that the
/// `-wal` and `-shm` SQLite creates beside it (with its mode) are too.
#[cfg(unix)]
fn claim_existing(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mode = meta.mode() & 0o777;
    if meta.uid() != me && (meta.len() == 0 || mode & 0o007 != 0) {
        return Err(Error::Other(tf(
            M::DbForeign,
            &[
                ("path", &crate::i18n::shown_path(path)),
                ("uid", &meta.uid()),
                ("mode", &format!("{mode:o}")),
            ],
        )));
    }
    if meta.uid() == me && meta.len() == 0 && mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| db_open_error(path, &crate::i18n::os_error(&e)))?;
    }
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, and brings its
    /// schema up to date.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Sqlite> {
        let mut created: Vec<PathBuf> = Vec::new();
        let mut existing = false;
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(Error::Other(tf(
                    M::DbIsDir,
                    &[("path", &crate::i18n::shown_path(path))],
                )));
            }
            // Refuse a file whose owner made it read-only, even when running
            // as root (who could write it anyway): the mode is the intent.
            Ok(meta) if meta.permissions().readonly() => {
                return Err(Error::Corrupt(tf(
                    M::DbReadOnly,
                    &[("path", &crate::i18n::shown_path(path))],
                )));
            }
            // A device, a pipe or a socket (`--db /dev/null`): never
            // opened, so never written or given another mode.
            Ok(meta) if !meta.is_file() => {
                return Err(Error::Other(tf(
                    M::DbNotFile,
                    &[("path", &crate::i18n::shown_path(path))],
                )));
            }
            Ok(meta) => {
                #[cfg(unix)]
                claim_existing(path, &meta)?;
                existing = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    created = missing_ancestors(parent);
                }
                if let Err(e) = create_private_file(path) {
                    remove_created(&created, None);
                    return Err(db_open_error(path, &crate::i18n::os_error(&e)));
                }
            }
            Err(e) => return Err(db_open_error(path, &crate::i18n::os_error(&e))),
        }
        // Busy while opening is not always waited out by SQLite itself:
        // processes that meet on a new file (switching it to WAL, running
        // the first migration) can be told "busy" at once, where waiting
        // could deadlock. Such an open starts again from a new connection,
        // within the same patience as any other wait.
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        configure_sqlite();
        let result = loop {
            attempt += 1;
            let opened = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| open_error(path, e))
            .and_then(|conn| {
                let mut db = Sqlite {
                    conn,
                    path: Some(path.to_path_buf()),
                };
                db.prepare(busy_timeout)?;
                Ok(db)
            });
            match opened {
                Err(Error::Busy(_)) if started.elapsed() < busy_timeout => {
                    super::backoff(attempt);
                }
                other => break other,
            }
        };
        if result.is_err() && !created.is_empty() {
            remove_created(&created, Some(path));
        }
        // Only a file now known to be recupera's database (or made one) has
        // its mode changed: a mistyped `--db` naming another file, or a
        // symlink to one, leaves it as it was.
        #[cfg(unix)]
        if existing && result.is_ok() {
            tighten(path);
        }
        #[cfg(not(unix))]
        let _ = existing;
        result
    }

    /// A private in-memory database (unit tests, benchmarks).
    pub fn open_in_memory() -> Result<Sqlite> {
        let conn = Connection::open_in_memory()?;
        let mut db = Sqlite { conn, path: None };
        db.prepare(super::DEFAULT_BUSY_TIMEOUT)?;
        Ok(db)
    }

    /// An in-memory database at an older schema version (upgrade tests).
    #[cfg(test)]
    pub fn in_memory_at(version: i64) -> Result<Sqlite> {
        let mut conn = Connection::open_in_memory()?;
        migrations::migrate_to(&mut conn, version)?;
        Ok(Sqlite { conn, path: None })
    }

    #[cfg(test)]
    pub fn migrate_to(&mut self, version: i64) -> Result<()> {
        Ok(migrations::migrate_to(&mut self.conn, version)?)
    }

    fn prepare(&mut self, busy_timeout: Duration) -> Result<()> {
        let shown = self
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(":memory:"));
        let err = |e| open_error(&shown, e);
        // A command that finds the write lock taken tries again every
        // millisecond until `busy_timeout`. SQLite's own handler sleeps
        // longer and longer (up to 100 ms between tries), so a login that
        // arrived during a big purge kept missing the instant between two
        // batches and waited through many of them (over a second measured:
        // BENCHMARKS.md, M4); with `let_writers_in` between a purge's
        // batches, a waiting command gets in after about one batch.
        let mut since = std::time::Instant::now();
        // At a terminal, a wait of more than a second is said once, so the
        // agent does not take it for a hang (scripts are not told).
        let tell = {
            use std::io::IsTerminal;
            std::io::stderr().is_terminal()
        };
        let mut told = false;
        self.conn
            .busy_handler(Some(move |tries: i32| {
                if tries == 0 {
                    since = std::time::Instant::now();
                }
                let waited = since.elapsed();
                if waited >= busy_timeout {
                    return false;
                }
                if tell && !told && waited >= Duration::from_secs(1) {
                    told = true;
                    crate::ui::warn(&tf(
                        M::DbWaiting,
                        &[("secs", &busy_timeout.as_secs().max(1))],
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
                true
            }))
            .map_err(err)?;
        // First read of the file: fails with NOTADB on random bytes. One
        // statement reads what the checks need (every statement prepared
        // is start-up time a short process pays), and from one snapshot:
        // read apart, another process's migration could commit between
        // "version 0" and "has tables" and look like another program's file.
        let (version, app_id, mode, tables): (i64, i64, String, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), \
                 (SELECT application_id FROM pragma_application_id), \
                 (SELECT journal_mode FROM pragma_journal_mode), \
                 (SELECT COUNT(*) FROM sqlite_master)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(err)?;
        let latest = migrations::latest();
        // Another program's SQLite file: never migrate it.
        let foreign = if version == 0 {
            tables > 0
        } else {
            app_id != migrations::APPLICATION_ID
        };
        let path_shown = crate::i18n::shown_path(&shown);
        if foreign {
            return Err(Error::Corrupt(tf(M::DbNotDb, &[("path", &path_shown)])));
        }
        if version > latest {
            return Err(Error::NewerSchema(tf(
                M::DbNewer,
                &[
                    ("path", &path_shown),
                    ("found", &version),
                    ("known", &latest),
                ],
            )));
        }
        if self.path.is_some() {
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
            // A short WAL: every process that finds itself alone rebuilds
            // the WAL index by reading the whole WAL (about 2 ms per 1,000
            // pages here), so it is folded back every 100 pages (400 KiB)
            // instead of SQLite's 1,000, and a WAL grown past 1 MiB by a big
            // transaction is cut back after its checkpoint.
            self.conn
                .execute_batch(
                    "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 100; \
                     PRAGMA journal_size_limit = 1048576",
                )
                .map_err(err)?;
            self.conn
                .set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                    true,
                )
                .map_err(err)?;
        }
        // FAST: the space a changed or deleted row leaves inside a page is
        // zeroed (no extra I/O), so an old copy of a customer's data does
        // not outlive the row (habeas data: `user delete` must leave none).
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA secure_delete = FAST")
            .map_err(err)?;
        if version < latest {
            migrations::migrate_to(&mut self.conn, latest).map_err(err)?;
            // The schema (or an upgrade's rewrite) folded into the file at
            // once: left in the WAL, every later process that finds itself
            // alone would rebuild the WAL index from those pages (a new
            // database's ~45) until the automatic checkpoint at 100. Best
            // effort: a reader on an older snapshot only delays it.
            if self.path.is_some() {
                let _ = self
                    .conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
        }
        Ok(())
    }

    /// Direct access for engine-specific tests (odd states, raw checks).
    #[doc(hidden)]
    pub fn raw(&self) -> &Connection {
        &self.conn
    }

    /// The connection itself, for a test's statement trace.
    #[cfg(test)]
    pub fn raw_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// SQLite's memory set-up for a short process, before its first connection
/// (it is then fixed for the process): no bulk page cache, whose 20 pages
/// (86 KiB) the first read touches one by one when a command reads a
/// handful, and a small lookaside pool, which SQLite links slot by slot
/// at every open (48 KiB) and a command that outgrows it serves from
/// `malloc`. Together ~20 of a `user show`'s ~250 page faults.
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::ffi::{c_int, c_void};
        // SAFETY: sqlite3_config with the argument types its documentation
        // gives for each option (PAGECACHE: a pointer and two ints, NULL
        // and zeros for "none"; LOOKASIDE: two ints). Called before any
        // connection of ours; when SQLite is already initialised it only
        // returns SQLITE_MISUSE and changes nothing, which is ignored.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_PAGECACHE,
                std::ptr::null_mut::<c_void>(),
                0 as c_int,
                0 as c_int,
            );
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_LOOKASIDE,
                1200 as c_int,
                8 as c_int,
            );
        }
    });
}

/// Removes the folders (and file) a failed open created, innermost first;
/// never anything that was there before.
fn remove_created(dirs: &[PathBuf], file: Option<&Path>) {
    if let Some(f) = file {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = f.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

impl Storage for Sqlite {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn schema_version(&mut self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn begin(&mut self, mode: Mode) -> Result<Box<dyn Txn + '_>> {
        let behavior = match mode {
            Mode::Read => TransactionBehavior::Deferred,
            Mode::Write => TransactionBehavior::Immediate,
        };
        let tx = self.conn.transaction_with_behavior(behavior)?;
        Ok(Box::new(SqliteTxn { tx }))
    }

    /// SQLite keeps no queue of waiting writers: a command that found the
    /// lock taken retries every millisecond (the busy handler above), and
    /// this pause lets it in before the job's next transaction.
    fn let_writers_in(&mut self) {
        std::thread::sleep(Duration::from_millis(3));
    }

    fn compact(&mut self) -> Result<()> {
        // Best effort: a reader holding an old snapshot only delays it.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        Ok(())
    }

    fn scrub(&mut self) -> Result<bool> {
        // Deleted rows were overwritten (secure_delete is on for the
        // deleting transaction); folding the WAL in and truncating it
        // leaves no older copy of those pages in either file. A reader
        // still on an older snapshot (another process's long listing)
        // keeps the WAL from being folded in: said, so the agent can run
        // `codes purge` (which truncates it) once that reader is done.
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .unwrap_or(1);
        Ok(busy == 0)
    }
}

impl Txn for SqliteTxn<'_> {
    fn commit(self: Box<Self>) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

pub(crate) fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::hash::Hasher;
    use crate::store::{CodeState, MailKind, MailState, Store};

    /// Schema 2 to 3 (a code's whole life in one row): a pending code stays
    /// confirmable with its hash and attempts, its queued message stays
    /// queued to the same recipient, ended codes and sent notices keep
    /// their states, the request log moves onto the account, and recovery
    /// disabled for good after 20 failures becomes a suspension.
    #[test]
    fn a_new_database_leaves_its_schema_in_the_file_not_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let db = Sqlite::open(&path, Duration::from_secs(1)).unwrap();
        let wal = std::fs::metadata(dir.path().join("r.db-wal")).unwrap();
        assert_eq!(wal.len(), 0, "the migration's pages stayed in the WAL");
        assert!(std::fs::metadata(&path).unwrap().len() > 4096);
        drop(db);
        // Opened again (nothing to migrate), it is still the same schema.
        let mut db = Sqlite::open(&path, Duration::from_secs(1)).unwrap();
        assert_eq!(db.schema_version().unwrap(), migrations::latest());
    }

    #[test]
    fn upgrade_from_schema_2_keeps_every_pending_code() {
        let mut db = Sqlite::in_memory_at(2).unwrap();
        let now = 1_750_000_000_i64;
        let hasher = Hasher::with_params(None, 8, 1, 1);
        let hash = hasher.hash(b"ABCDE").unwrap();
        db.conn
            .execute_batch(&format!(
                "INSERT INTO accounts (id, kind, nit, email, created_at, failed_confirms) VALUES
                   (1, 'cliente', '900102030', 'a@example.co', {now}, 3),
                   (2, 'cliente', '800000001', 'b@example.co', {now}, 20);
                 INSERT INTO codes (id, account_id, code_hash, created_at, expires_at, ends_at,
                                    attempts, state) VALUES
                   (10, 1, '{hash}', {now} - 60, {now} + 840, {now} + 840, 2, 'pending'),
                   (9, 1, 'x', {now} - 4000, {now} - 3100, {now} - 3500, 0, 'replaced');
                 INSERT INTO mail_queue (id, account_id, code_id, kind, recipient, created_at,
                                         state) VALUES
                   (5, 1, 10, 'reset_code', 'a@example.co', {now} - 60, 'queued'),
                   (4, 1, 9, 'reset_code', 'a@example.co', {now} - 4000, 'sent'),
                   (6, 1, NULL, 'password_changed', 'a@example.co', {now} - 100, 'sent');
                 INSERT INTO reset_requests (account_id, at) VALUES (1, {now} - 4000), (1, {now} - 60);"
            ))
            .unwrap();
        db.migrate_to(migrations::latest()).unwrap();
        let mut store = Store::from_engine(Box::new(db));
        store
            .read(|tx| {
                let live = tx
                    .live_code(1, now)?
                    .expect("the pending code is still live");
                assert_eq!((live.id, live.attempts), (10, 2));
                assert!(hasher.verify(b"ABCDE", live.hash.as_deref().unwrap()));
                let acc = tx.account(1)?.unwrap();
                assert_eq!(acc.live_code_id, Some(10));
                assert_eq!(acc.request_log.times(), &[now - 4000, now - 60]);
                assert_eq!(acc.channel.failures, 3);
                assert_eq!(tx.code(9)?.unwrap().state, CodeState::Replaced);
                // A message id is its code's id; notices come after the codes.
                assert_eq!(tx.queued_mail_ids()?, vec![10]);
                let m = tx.mail(10)?.unwrap();
                assert_eq!(
                    (m.kind, m.mail.recipient.as_str()),
                    (MailKind::ResetCode, "a@example.co")
                );
                assert_eq!(tx.mail(9)?.unwrap().mail.state, MailState::Sent);
                let notice = tx.mail(16)?.unwrap();
                assert_eq!(
                    (notice.kind, notice.mail.state),
                    (MailKind::PasswordChanged, MailState::Sent)
                );
                let off = tx.account(2)?.unwrap();
                assert_eq!(off.channel.failures, 0);
                assert!(off.channel.suspended_until.is_some());
                Ok(())
            })
            .unwrap();
    }

    /// Schema 3 to 4 (the index by end dropped): a pending code stays
    /// confirmable, and a purge still takes only the finished one.
    #[test]
    fn upgrade_from_schema_3_keeps_every_pending_code() {
        let mut db = Sqlite::in_memory_at(3).unwrap();
        db.conn
            .execute_batch(crate::store::suite::UPGRADE_3_ROWS)
            .unwrap();
        db.migrate_to(migrations::latest()).unwrap();
        let indexes: i64 = db
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'codes_by_end'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
        let mut store = Store::from_engine(Box::new(db));
        assert_eq!(store.schema_version().unwrap(), migrations::latest());
        crate::store::suite::after_upgrade_to_4(&mut store);
    }
}
