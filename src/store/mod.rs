//! Storage: one interface, two engines (SQLite in [`sqlite`], PostgreSQL in
//! [`postgres`]). Nothing outside `store/` writes SQL or names an engine.
//!
//! Invariants:
//! - The engine is chosen from the `--db` value in one place,
//!   [`Location::parse`]: a `postgres://` or `postgresql://` URL is
//!   PostgreSQL, anything else a SQLite file path.
//! - [`Storage::begin`] opens a transaction; a [`Txn`] commits only through
//!   [`Txn::commit`] and rolls back when dropped, so an error or a panic
//!   half-way leaves nothing half-written.
//! - A write transaction is serialised against every other write that
//!   touches the same account: SQLite takes its write lock at `BEGIN
//!   IMMEDIATE`; PostgreSQL locks the account rows it reads (`FOR UPDATE`).
//!   The state checks and the update of a limit therefore happen under one
//!   lock, on any number of machines.
//! - The rules (limits, gates) are in `domain::limits`; engines only read
//!   and write the numbers. Times are the program's clock (passed in),
//!   never the server's.
//! - Serialization failures and deadlocks are retried a bounded number of
//!   times by [`Store::write`], then reported as busy (exit 75).
//! - Engines map their own errors into [`Error`]; the rest of the program
//!   never sees rusqlite or postgres types.

pub mod location;
pub mod postgres;
pub mod sqlite;

pub use location::{Location, PgTarget};

use crate::domain::account::{Account, AccountType};
use crate::domain::email::Email;
use crate::domain::lang::Lang;
use crate::domain::limits::{ChannelState, LoginState, RequestLog};
use crate::domain::nit::Nit;
use std::time::Duration;

pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts of one write transaction that hit a serialization failure or
/// a deadlock before it is reported as busy.
pub const MAX_TXN_ATTEMPTS: u32 = 10;

// ------------------------------------------------------------------ errors

/// What can go wrong in storage, in the user's language, by what a caller
/// (and the exit-code table) does about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Held by other processes past the timeout (exit 75).
    #[error("{0}")]
    Busy(String),
    /// A serialization failure or deadlock: retried, then exit 75.
    #[error("{0}")]
    Conflict(String),
    /// The server cannot be reached (exit 69).
    #[error("{0}")]
    Unavailable(String),
    /// The server refused our credentials (exit 78).
    #[error("{0}")]
    Auth(String),
    /// The location itself is wrong: a bad URL, plain text to a remote
    /// host, a password on the command line (exit 78).
    #[error("{0}")]
    Config(String),
    /// Written by a newer recupera (exit 74, untouched).
    #[error("{0}")]
    NewerSchema(String),
    /// Not a recupera database, damaged, or read-only (exit 74, untouched).
    #[error("{0}")]
    Corrupt(String),
    /// Any other failure of the database (exit 74).
    #[error("{0}")]
    Other(String),
    /// A caller's callback (e.g. writing a listing to a closed pipe)
    /// stopped an iteration with its own error, passed through untouched.
    #[error("{0}")]
    Stopped(Box<crate::error::Error>),
}

impl Error {
    /// Wraps the error of a `for_each` callback.
    pub fn stopped(e: crate::error::Error) -> Error {
        Error::Stopped(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// ------------------------------------------------------------ row types

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One consistent snapshot; nothing is written.
    Read,
    /// Serialised with other writers of the same rows; see the module doc.
    Write,
}

/// A code's stored state. "Expired" is not stored: a pending code past its
/// expiry is expired whether or not the purge has run ([`CodeState::shown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeState {
    Pending,
    Used,
    Replaced,
    Exhausted,
}

impl CodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            CodeState::Pending => "pending",
            CodeState::Used => "used",
            CodeState::Replaced => "replaced",
            CodeState::Exhausted => "exhausted",
        }
    }

    pub fn from_stored(s: &str) -> Result<CodeState> {
        Ok(match s {
            "pending" => CodeState::Pending,
            "used" => CodeState::Used,
            "replaced" => CodeState::Replaced,
            "exhausted" => CodeState::Exhausted,
            other => return Err(bad_value("codes.state", other)),
        })
    }
}

/// What a person sees of a code's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownCodeState {
    Pending,
    Expired,
    Used,
    Replaced,
    Exhausted,
}

impl ShownCodeState {
    pub const ALL: [ShownCodeState; 5] = [
        ShownCodeState::Pending,
        ShownCodeState::Expired,
        ShownCodeState::Used,
        ShownCodeState::Replaced,
        ShownCodeState::Exhausted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShownCodeState::Pending => "pending",
            ShownCodeState::Expired => "expired",
            ShownCodeState::Used => "used",
            ShownCodeState::Replaced => "replaced",
            ShownCodeState::Exhausted => "exhausted",
        }
    }
}

impl CodeState {
    pub fn shown(self, expires_at: i64, now: i64) -> ShownCodeState {
        match self {
            CodeState::Pending if expires_at <= now => ShownCodeState::Expired,
            CodeState::Pending => ShownCodeState::Pending,
            CodeState::Used => ShownCodeState::Used,
            CodeState::Replaced => ShownCodeState::Replaced,
            CodeState::Exhausted => ShownCodeState::Exhausted,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    Queued,
    Sent,
    Dropped,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Queued => "queued",
            MailState::Sent => "sent",
            MailState::Dropped => "dropped",
        }
    }

    pub fn from_stored(s: &str) -> Result<MailState> {
        Ok(match s {
            "queued" => MailState::Queued,
            "sent" => MailState::Sent,
            "dropped" => MailState::Dropped,
            other => return Err(bad_value("mail state", other)),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// The manual's step 04: a recovery code (also an import's invitation).
    ResetCode,
    /// After a reset: "your password was changed".
    PasswordChanged,
    /// To the old address after `user edit --email`.
    EmailChangedOld,
    /// To the new address after `user edit --email`.
    EmailChangedNew,
    /// The recovery channel was suspended after repeated failures.
    ChannelSuspended,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::ResetCode => "reset_code",
            MailKind::PasswordChanged => "password_changed",
            MailKind::EmailChangedOld => "email_changed_old",
            MailKind::EmailChangedNew => "email_changed_new",
            MailKind::ChannelSuspended => "channel_suspended",
        }
    }

    pub fn from_stored(s: &str) -> Result<MailKind> {
        Ok(match s {
            "reset_code" => MailKind::ResetCode,
            "password_changed" => MailKind::PasswordChanged,
            "email_changed_old" => MailKind::EmailChangedOld,
            "email_changed_new" => MailKind::EmailChangedNew,
            "channel_suspended" => MailKind::ChannelSuspended,
            other => return Err(bad_value("mail kind", other)),
        })
    }
}

pub(crate) fn bad_value(what: &str, value: &str) -> Error {
    Error::Corrupt(crate::i18n::tf(
        crate::i18n::M::DbBadValue,
        &[("what", &what), ("value", &crate::i18n::quote(value))],
    ))
}

/// A new account, validated.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertAccount {
    Created(i64),
    Exists,
    UsernameTaken,
}

/// The fields `user edit` may change (all of them written).
pub struct Profile<'a> {
    pub email: &'a Email,
    pub username: Option<&'a str>,
    pub name: Option<&'a str>,
    pub lang: Lang,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateProfile {
    Updated,
    UsernameTaken,
}

/// A delivery under way: who holds a queued message and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub token: String,
    pub until: i64,
}

/// A new recovery code with its message, queued.
pub struct NewCode<'a> {
    pub account_id: i64,
    /// `None`: issued when its message is prepared (`mail retry`), as for
    /// an import's invitations.
    pub hash: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
    /// The stored address (never the typed one).
    pub recipient: &'a Email,
    /// Claimed by the process that delivers right after the commit.
    pub claim: Option<&'a Claim>,
}

/// The usable code of an account.
#[derive(Debug, Clone)]
pub struct LiveCode {
    pub id: i64,
    pub account_id: i64,
    pub hash: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Delivery state, as stored on a code's row or a notice's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub recipient: String,
    pub state: MailState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
    pub claim: Option<String>,
    pub claimed_until: Option<i64>,
}

/// A code's whole row (one row per request: the code and its message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub id: i64,
    pub account_id: i64,
    pub hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it stopped (or will stop) being usable: expiry, or the moment
    /// it was used, replaced or exhausted. A purge deletes the code once
    /// this is at or before its time.
    pub ends_at: i64,
    pub attempts: i64,
    pub state: CodeState,
    pub mail: Delivery,
}

/// A code as `codes list` shows it.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code: CodeRecord,
    pub kind: AccountType,
    pub nit: Nit,
}

/// A message that is not a code (notices), whole row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecord {
    pub id: i64,
    pub account_id: i64,
    pub kind: MailKind,
    /// Kind-specific text with no secret (e.g. the new address, masked).
    pub detail: Option<String>,
    pub created_at: i64,
    pub mail: Delivery,
}

pub struct NewNotice<'a> {
    pub account_id: i64,
    pub kind: MailKind,
    pub recipient: &'a Email,
    pub detail: Option<&'a str>,
    pub now: i64,
    pub claim: Option<&'a Claim>,
}

/// A queued or finished message, whichever table holds it.
#[derive(Debug, Clone)]
pub struct MailRow {
    pub id: i64,
    pub account_id: i64,
    pub code_id: Option<i64>,
    pub kind: MailKind,
    pub detail: Option<String>,
    pub created_at: i64,
    pub mail: Delivery,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    pub codes: u64,
    pub mails: u64,
}

/// What one [`Codes::purge_batch`] did, and where the walk goes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeBatch {
    pub codes: u64,
    pub notices: u64,
    /// The id the next batch starts after (past any gap in the ids);
    /// `None` once every code was seen.
    pub next: Option<i64>,
}

/// A purge step's bound as SQL wants it: at least 1, at most `i64::MAX`.
pub(crate) fn purge_bound(n: u64) -> i64 {
    n.clamp(1, i64::MAX as u64) as i64
}

/// Who did what, for the audit log. Never a secret.
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

#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Which audit rows `audit` shows (all conditions hold together).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account_id: Option<i64>,
    /// Inclusive, Unix seconds.
    pub since: Option<i64>,
    /// Exclusive, Unix seconds.
    pub until: Option<i64>,
    pub event: Option<String>,
    pub agent: Option<String>,
    /// The rows that name an account this way (a deleted account's
    /// pseudonym: its rows keep no account id).
    pub subject: Option<String>,
    pub limit: Option<u64>,
}

/// `db status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub accounts: i64,
    pub codes_pending: i64,
    pub mail_queued: i64,
    pub audit: i64,
}

/// Rows per kind, as `db copy` verifies them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    pub accounts: i64,
    pub codes: i64,
    pub mail: i64,
    pub audit: i64,
}

/// One row of any table, for `db copy`.
#[derive(Debug, Clone)]
pub enum Record {
    Account(Box<Account>),
    Code(Box<CodeRecord>),
    Notice(Box<NoticeRecord>),
    Audit(Box<AuditRow>),
}

/// Audit events whose detail can hold personal data (before/after values
/// of an edit, an agent's free-text reason): dropped when the account is
/// deleted.
pub const PII_DETAIL_EVENTS: &[&str] = &["user.edit", "user.disable"];

/// Every event the audit table records (`audit --event` takes one of
/// them; a test checks that every `AuditEntry::new` in the sources names
/// one).
pub const AUDIT_EVENTS: &[&str] = &[
    "codes.purge",
    "login",
    "mail.deliver",
    "recovery.suspend",
    "reset.confirm",
    "reset.request",
    "user.add",
    "user.delete",
    "user.disable",
    "user.edit",
    "user.enable",
    "user.import",
    "user.unlock",
];

/// Called once per row; returning an error stops the iteration.
pub type Each<'f, T> = &'f mut dyn FnMut(T) -> crate::error::Result<()>;

// ----------------------------------------------------------------- traits

/// An open database of either engine.
pub trait Storage: Send {
    fn engine(&self) -> Engine;

    /// The schema version this database is at.
    fn schema_version(&mut self) -> Result<i64>;

    /// Starts a transaction. Dropping it without [`Txn::commit`] rolls back.
    fn begin(&mut self, mode: Mode) -> Result<Box<dyn Txn + '_>>;

    /// After a large purge: give the space back (SQLite folds the WAL in).
    fn compact(&mut self) -> Result<()>;

    /// Between two write transactions of one long job (a purge's batches):
    /// a moment for other commands waiting to write to get the lock where
    /// the engine does not queue them itself.
    fn let_writers_in(&mut self) {}

    /// After erasing personal data: make sure no copy of it lingers in the
    /// engine's files where the engine lets us (SQLite: WAL truncated with
    /// secure deletion on; PostgreSQL: dead rows vacuumed).
    /// False when a copy may remain for now (SQLite: another reader kept
    /// the WAL from being folded in).
    fn scrub(&mut self) -> Result<bool>;
}

/// A transaction with the domain's operations, grouped by aggregate (one
/// file per aggregate in each engine). Account look-ups in a write
/// transaction lock the rows they return until commit or rollback.
pub trait Txn: Accounts + Codes + Mail + Audit + Whole {
    fn commit(self: Box<Self>) -> Result<()>;

    /// Invitations (`user import --invite`): for each code, what
    /// `insert_code` does (the account's live code killed, the code and
    /// its queued message stored), then `log` as the account's request
    /// quota. Here one by one; PostgreSQL overrides it to send a batch in
    /// three statements (one at a time if an account is in it twice).
    fn insert_invitations(&mut self, codes: &[NewCode<'_>], log: &RequestLog) -> Result<()> {
        invitations_one_by_one(self, codes, log)
    }
}

/// `Txn::insert_invitations` one code at a time: the default, and
/// PostgreSQL's when an account is in a batch twice.
pub(crate) fn invitations_one_by_one<T: Txn + ?Sized>(
    tx: &mut T,
    codes: &[NewCode<'_>],
    log: &RequestLog,
) -> Result<()> {
    for c in codes {
        tx.insert_code(c)?;
        tx.set_request_log(c.account_id, log)?;
    }
    Ok(())
}

pub trait Accounts {
    fn insert_account(&mut self, a: &NewAccount<'_>) -> Result<InsertAccount>;
    /// Several accounts, one answer per row in order, as if each were
    /// inserted alone (`user import`). Here one by one; PostgreSQL
    /// overrides it to send a batch in one statement: one round trip to
    /// the server instead of one per row.
    fn insert_accounts(&mut self, rows: &[NewAccount<'_>]) -> Result<Vec<InsertAccount>> {
        rows.iter().map(|a| self.insert_account(a)).collect()
    }
    fn account(&mut self, id: i64) -> Result<Option<Account>>;
    /// Accounts with this NIT, of one type or both, cliente first.
    fn accounts_by_nit(&mut self, kind: Option<AccountType>, nit: &Nit) -> Result<Vec<Account>>;
    /// Proveedores with this username (compared without case).
    fn accounts_by_username(&mut self, username: &str) -> Result<Vec<Account>>;
    /// Accounts with this email (compared without case), oldest first.
    fn accounts_by_email(
        &mut self,
        kind: Option<AccountType>,
        email: &Email,
    ) -> Result<Vec<Account>>;
    /// Every account in id order, one at a time (never all in memory).
    fn for_each_account(&mut self, kind: Option<AccountType>, f: Each<'_, Account>) -> Result<()>;
    fn set_login_state(&mut self, id: i64, s: &LoginState) -> Result<()>;
    fn set_channel_state(&mut self, id: i64, s: &ChannelState) -> Result<()>;
    fn set_request_log(&mut self, id: i64, log: &RequestLog) -> Result<()>;
    /// A new password (reset): hash and time; counters are the caller's.
    fn set_password(&mut self, id: i64, hash: &str, now: i64) -> Result<()>;
    /// Replaces `old` by `new` only if the hash is still `old` (a re-hash
    /// at login must not undo a reset that happened meanwhile).
    fn replace_password_hash(&mut self, id: i64, old: &str, new: &str) -> Result<bool>;
    fn set_last_login(&mut self, id: i64, now: i64) -> Result<()>;
    /// `Some((at, reason))` disables the account; `None` enables it.
    fn set_disabled(&mut self, id: i64, disabled: Option<(i64, Option<&str>)>) -> Result<()>;
    fn update_profile(&mut self, id: i64, p: &Profile<'_>) -> Result<UpdateProfile>;
    /// Removes the account with its codes and notices, and returns the
    /// addresses those codes and notices were mailed to (each once, in
    /// no set order: for `user delete` to find their `.eml` files). Audit
    /// rows stay (see [`Audit::pseudonymize_audit`]).
    fn delete_account(&mut self, id: i64) -> Result<Vec<String>>;
}

pub trait Codes {
    /// Stores a new code and its queued message, and kills the account's
    /// live code (a new request kills the old one).
    fn insert_code(&mut self, c: &NewCode<'_>) -> Result<i64>;
    /// The usable code of an account, if any (at most one).
    fn live_code(&mut self, account_id: i64, now: i64) -> Result<Option<LiveCode>>;
    fn code(&mut self, id: i64) -> Result<Option<CodeRecord>>;
    /// Counts an attempt on a pending code; false if it was not pending.
    fn count_code_attempt(&mut self, code_id: i64) -> Result<bool>;
    /// Gives an attempt back (a right code whose password was refused).
    fn refund_code_attempt(&mut self, code_id: i64) -> Result<()>;
    /// Ends a pending code as `state` at `now`; false if it was not
    /// pending (or, for `Used`, already expired).
    fn end_code(&mut self, code_id: i64, state: CodeState, now: i64) -> Result<bool>;
    /// Kills the account's live code, if any.
    fn kill_codes(&mut self, account_id: i64, now: i64) -> Result<u64>;
    /// Gives a pending code a new hash (its clear value was never stored,
    /// so a re-sent message carries a fresh one).
    fn rekey_code(&mut self, code_id: i64, hash: &str, now: i64) -> Result<bool>;
    /// Every stored code, newest first.
    fn for_each_code(&mut self, f: Each<'_, CodeRow>) -> Result<()>;
    fn purge_counts(&mut self, now: i64) -> Result<PurgeCounts>;
    /// One step of a purge's walk through the codes in id order: deletes
    /// the finished codes with ids in `after + 1 ..= after + span`, at most
    /// `limit` of them, and at most `limit` finished notices. Id order is
    /// the order of the table's pages, so a purge writes each page once
    /// however finished and live codes are mixed.
    fn purge_batch(&mut self, now: i64, after: i64, span: u64, limit: u64) -> Result<PurgeBatch>;
}

pub trait Mail {
    fn enqueue_notice(&mut self, n: &NewNotice<'_>) -> Result<i64>;
    /// Takes a queued message nobody holds (no claim, or a lapsed one).
    fn claim_mail(&mut self, id: i64, claim: &Claim, now: i64) -> Result<bool>;
    /// Extends a claim this process holds; false if it is not ours.
    fn renew_claim(&mut self, id: i64, claim: &Claim) -> Result<bool>;
    fn mail(&mut self, id: i64) -> Result<Option<MailRow>>;
    /// Ids of queued messages, oldest first.
    fn queued_mail_ids(&mut self) -> Result<Vec<i64>>;
    /// Only the claim's holder records a delivery.
    fn mail_sent(&mut self, id: i64, token: &str, now: i64) -> Result<bool>;
    fn mail_failed(&mut self, id: i64, token: &str, error: &str) -> Result<bool>;
    fn mail_dropped(&mut self, id: i64, reason: &str, now: i64) -> Result<()>;
    /// Every message, newest first.
    fn for_each_mail(&mut self, f: Each<'_, MailRow>) -> Result<()>;
}

pub trait Audit {
    fn audit(&mut self, e: &AuditEntry<'_>, now: i64) -> Result<()>;
    /// Newest first.
    fn for_each_audit(&mut self, filter: &AuditFilter, f: Each<'_, AuditRow>) -> Result<()>;
    /// After a deletion: the account's rows name it only by `pseudonym`,
    /// and details that carried personal data are dropped.
    fn pseudonymize_audit(&mut self, account_id: i64, pseudonym: &str) -> Result<u64>;
}

/// Operations on the whole database: `db status` and `db copy`.
pub trait Whole {
    fn counts(&mut self, now: i64) -> Result<Counts>;
    fn row_counts(&mut self) -> Result<RowCounts>;
    /// The target of a copy: kept from every other writer until the
    /// transaction ends (two copies, or a copy and a `user add`, take
    /// turns), then counted.
    fn claim_for_load(&mut self) -> Result<RowCounts>;
    /// Every row of every table, accounts first (the order a copy needs).
    fn dump(&mut self, f: Each<'_, Record>) -> Result<()>;
    /// Inserts a row as it was, ids included (`db copy` into an empty
    /// database); [`Whole::finish_load`] then moves id counters past them.
    fn load(&mut self, r: &Record) -> Result<()>;
    fn finish_load(&mut self) -> Result<()>;
}

// ------------------------------------------------------------------ Store

static COMMITTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once this process has committed a write transaction: a later
/// failure to write the answer must say that the work was saved.
pub fn committed() -> bool {
    COMMITTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// An open database: the engine behind the interface, and the helpers
/// every command uses.
pub struct Store {
    inner: Box<dyn Storage>,
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `loc`.
    pub fn open(loc: &Location, busy_timeout: Duration) -> Result<Store> {
        let inner: Box<dyn Storage> = match loc {
            Location::Sqlite(path) => Box::new(sqlite::Sqlite::open(path, busy_timeout)?),
            Location::Postgres(target) => Box::new(postgres::Postgres::open(target, busy_timeout)?),
        };
        Ok(Store { inner })
    }

    /// Opens the database at `loc` as [`Store::open`] does, but refuses a
    /// SQLite file that does not exist (exit 74) instead of making one:
    /// every command but `user add` and `user import` (a mistyped `--db`
    /// must not become a new empty database that answers like a real one).
    pub fn open_existing(loc: &Location, busy_timeout: Duration) -> Result<Store> {
        if let Location::Sqlite(path) = loc
            && loc.is_missing_file()
        {
            return Err(Error::Other(crate::i18n::tf(
                crate::i18n::M::DbMissing,
                &[("path", &crate::i18n::shown_path(path))],
            )));
        }
        Store::open(loc, busy_timeout)
    }

    /// A private in-memory SQLite database (unit tests, benchmarks).
    pub fn in_memory() -> Result<Store> {
        Ok(Store {
            inner: Box::new(sqlite::Sqlite::open_in_memory()?),
        })
    }

    pub fn from_engine(inner: Box<dyn Storage>) -> Store {
        Store { inner }
    }

    pub fn engine(&self) -> Engine {
        self.inner.engine()
    }

    pub fn schema_version(&mut self) -> Result<i64> {
        self.inner.schema_version()
    }

    pub fn storage(&mut self) -> &mut dyn Storage {
        self.inner.as_mut()
    }

    /// Runs `f` in a write transaction and commits if it returns `Ok`.
    /// A serialization failure or deadlock (from `f` or the commit) rolls
    /// back and runs `f` again, at most [`MAX_TXN_ATTEMPTS`] times.
    pub fn write<T>(
        &mut self,
        f: impl FnMut(&mut dyn Txn) -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        self.run(Mode::Write, f)
    }

    /// Runs `f` in a read transaction (one consistent snapshot), retried
    /// like [`Store::write`].
    pub fn read<T>(
        &mut self,
        f: impl FnMut(&mut dyn Txn) -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        self.run(Mode::Read, f)
    }

    fn run<T>(
        &mut self,
        mode: Mode,
        mut f: impl FnMut(&mut dyn Txn) -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = (|| {
                let mut tx = self.inner.begin(mode)?;
                let out = f(tx.as_mut())?;
                tx.commit()?;
                if mode == Mode::Write {
                    COMMITTED.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(out)
            })();
            match result {
                Err(crate::error::Error::Store(Error::Conflict(msg))) => {
                    if attempt >= MAX_TXN_ATTEMPTS {
                        return Err(crate::error::Error::Store(Error::Busy(msg)));
                    }
                    backoff(attempt);
                }
                other => return other,
            }
        }
    }

    pub fn compact(&mut self) -> Result<()> {
        self.inner.compact()
    }

    pub fn let_writers_in(&mut self) {
        self.inner.let_writers_in()
    }

    pub fn scrub(&mut self) -> Result<bool> {
        self.inner.scrub()
    }
}

/// Sleeps a little more on each retry, with jitter so that the processes
/// that collided do not collide again in step.
pub(crate) fn backoff(attempt: u32) {
    use rand::RngExt;
    let base = 2u64 << attempt.min(7);
    let jitter = rand::rng().random_range(0..=base);
    std::thread::sleep(Duration::from_millis(base + jitter));
}

#[cfg(test)]
pub mod suite;

#[cfg(test)]
mod tests {
    use super::*;

    /// `AUDIT_EVENTS` is the events the sources record: each literal event
    /// of an `AuditEntry::new` is listed, and each listed one is recorded
    /// somewhere.
    #[test]
    fn the_audit_events_listed_are_the_ones_recorded() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(std::fs::read_to_string(&p).unwrap());
                }
            }
        }
        let mut sources = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut sources,
        );
        let mut recorded = std::collections::BTreeSet::new();
        for text in &sources {
            for (at, _) in text.match_indices("AuditEntry::new(") {
                let args = &text[at + "AuditEntry::new(".len()..];
                let Some(comma) = args.find(',') else {
                    continue;
                };
                let second = args[comma + 1..].trim_start();
                if let Some(rest) = second.strip_prefix('"') {
                    let end = rest.find('"').unwrap();
                    recorded.insert(rest[..end].to_string());
                }
            }
        }
        let listed: std::collections::BTreeSet<String> =
            AUDIT_EVENTS.iter().map(|e| e.to_string()).collect();
        assert!(recorded.len() >= 10, "{recorded:?}");
        assert_eq!(recorded, listed);
    }

    /// A pending code is shown expired from its expiry second on, whether
    /// or not a purge has run; ended codes show how they ended.
    #[test]
    fn shown_code_states() {
        let p = CodeState::Pending;
        assert_eq!(p.shown(100, 99), ShownCodeState::Pending);
        assert_eq!(p.shown(100, 100), ShownCodeState::Expired);
        assert_eq!(p.shown(100, 101), ShownCodeState::Expired);
        assert_eq!(CodeState::Used.shown(100, 50), ShownCodeState::Used);
        assert_eq!(CodeState::Replaced.shown(100, 50), ShownCodeState::Replaced);
        assert_eq!(
            CodeState::Exhausted.shown(100, 50),
            ShownCodeState::Exhausted
        );
        let names: Vec<&str> = ShownCodeState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["pending", "expired", "used", "replaced", "exhausted"]
        );
    }

    /// The names `db status --json` and error messages use.
    #[test]
    fn engine_names() {
        assert_eq!(Engine::Sqlite.as_str(), "sqlite");
        assert_eq!(Engine::Postgres.as_str(), "postgres");
    }
}
