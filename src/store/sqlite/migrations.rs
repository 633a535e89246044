//! SQLite schema migrations, tracked in `user_version`, and their runner.
//!
//! Invariants:
//! - Append-only. Never edit or remove an entry: databases in the field were
//!   built by it. Entry `i` moves a database from version `i` to `i + 1`.
//! - Each entry runs in its own `BEGIN IMMEDIATE` transaction together with
//!   the `user_version` bump, so a crash leaves the database at a version,
//!   and two processes starting at once apply each step once (the version is
//!   re-read under the write lock).
//! - The PostgreSQL engine has the same steps (`store/postgres/migrations.rs`),
//!   so a schema version means the same tables on both engines.
//! - Timestamps are UTC Unix seconds (INTEGER).

use rusqlite::{Connection, TransactionBehavior};

/// `PRAGMA application_id` of a recupera database ("RCUP"): a file from
/// another program is refused instead of being migrated.
pub const APPLICATION_ID: i64 = 0x5243_5550;

pub const MIGRATIONS: &[&str] = &[
    // 1: accounts, recovery codes, request log, mail queue, audit.
    r#"
    PRAGMA application_id = 1380144464;
    CREATE TABLE accounts (
        id                  INTEGER PRIMARY KEY,
        kind                TEXT    NOT NULL CHECK (kind IN ('cliente', 'proveedor')),
        nit                 TEXT    NOT NULL,
        username            TEXT,
        email               TEXT    NOT NULL,
        name                TEXT,
        lang                TEXT    NOT NULL DEFAULT 'es' CHECK (lang IN ('es', 'en')),
        password_hash       TEXT,
        created_at          INTEGER NOT NULL,
        password_changed_at INTEGER,
        last_login_at       INTEGER,
        failed_logins       INTEGER NOT NULL DEFAULT 0,
        login_locked_until  INTEGER,
        failed_confirms     INTEGER NOT NULL DEFAULT 0,
        UNIQUE (kind, nit)
    );
    -- Look-ups by NIT across types (reset confirm without --type).
    CREATE INDEX accounts_by_nit ON accounts (nit);
    CREATE UNIQUE INDEX accounts_by_username ON accounts (username COLLATE NOCASE)
        WHERE username IS NOT NULL;
    CREATE INDEX accounts_by_email ON accounts (email COLLATE NOCASE);

    -- ends_at is when the code stopped (or will stop) being usable: its
    -- expiry, or the moment it was used, replaced or exhausted. Purge is one
    -- range scan on it.
    CREATE TABLE codes (
        id          INTEGER PRIMARY KEY,
        account_id  INTEGER NOT NULL REFERENCES accounts (id),
        code_hash   TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        ends_at     INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        state       TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'used', 'replaced', 'exhausted'))
    );
    CREATE INDEX codes_pending_by_account ON codes (account_id) WHERE state = 'pending';
    CREATE INDEX codes_by_end ON codes (ends_at);

    -- Granted reset requests, for the per-account rate limits. Kept apart
    -- from codes so purging codes never resets a limit.
    CREATE TABLE reset_requests (
        id          INTEGER PRIMARY KEY,
        account_id  INTEGER NOT NULL REFERENCES accounts (id),
        at          INTEGER NOT NULL
    );
    CREATE INDEX reset_requests_by_account ON reset_requests (account_id, at);
    CREATE INDEX reset_requests_by_time ON reset_requests (at);

    -- Mail waiting for (or done with) delivery. A reset message never holds
    -- its code: the code exists in clear only in memory and in the email.
    CREATE TABLE mail_queue (
        id          INTEGER PRIMARY KEY,
        account_id  INTEGER NOT NULL REFERENCES accounts (id),
        code_id     INTEGER REFERENCES codes (id),
        kind        TEXT    NOT NULL CHECK (kind IN ('reset_code', 'password_changed')),
        recipient   TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        state       TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dropped')),
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT,
        finished_at INTEGER
    );
    CREATE INDEX mail_queue_by_code ON mail_queue (code_id) WHERE code_id IS NOT NULL;
    CREATE INDEX mail_queue_queued ON mail_queue (id) WHERE state = 'queued';
    CREATE INDEX mail_queue_finished ON mail_queue (finished_at) WHERE code_id IS NULL;

    -- Every state change and every login/confirm attempt. Never a secret.
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        agent       TEXT    NOT NULL,
        account_id  INTEGER,
        subject     TEXT,
        event       TEXT    NOT NULL,
        outcome     TEXT    NOT NULL,
        detail      TEXT
    );
    CREATE INDEX audit_by_account ON audit (account_id, id);
    "#,
    // 2: who is delivering a queued message, and until when, so that two
    // deliveries (two `mail retry`, or a retry and a background delivery)
    // never send the same message.
    r#"
    ALTER TABLE mail_queue ADD COLUMN claim TEXT;
    ALTER TABLE mail_queue ADD COLUMN claimed_until INTEGER;
    "#,
    // 3: a code's whole life in one row (the request, the code and its
    // message), the rate limits and the live code on the account, notices
    // (mail that carries no code) in their own table, disabled accounts and
    // a recovery suspension that ends. Purge then deletes one row per code
    // through one index, instead of three rows and seven index entries.
    r#"
    ALTER TABLE accounts ADD COLUMN live_code_id INTEGER;
    ALTER TABLE accounts ADD COLUMN request_log TEXT NOT NULL DEFAULT '';
    ALTER TABLE accounts ADD COLUMN recovery_suspended_until INTEGER;
    ALTER TABLE accounts ADD COLUMN disabled_at INTEGER;
    ALTER TABLE accounts ADD COLUMN disabled_reason TEXT;

    CREATE TABLE codes_v3 (
        id               INTEGER PRIMARY KEY,
        account_id       INTEGER NOT NULL REFERENCES accounts (id),
        -- NULL: not issued yet (an invitation's code is made by mail retry).
        code_hash        TEXT,
        created_at       INTEGER NOT NULL,
        expires_at       INTEGER NOT NULL,
        ends_at          INTEGER NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        state            TEXT    NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'used', 'replaced', 'exhausted')),
        recipient        TEXT    NOT NULL,
        mail_state       TEXT    NOT NULL DEFAULT 'queued'
                         CHECK (mail_state IN ('queued', 'sent', 'dropped')),
        mail_attempts    INTEGER NOT NULL DEFAULT 0,
        last_error       TEXT,
        mail_finished_at INTEGER,
        claim            TEXT,
        claimed_until    INTEGER
    );
    INSERT INTO codes_v3 (id, account_id, code_hash, created_at, expires_at, ends_at, attempts,
        state, recipient, mail_state, mail_attempts, last_error, mail_finished_at, claim,
        claimed_until)
    SELECT c.id, c.account_id, c.code_hash, c.created_at, c.expires_at, c.ends_at, c.attempts,
        c.state, COALESCE(m.recipient, a.email), COALESCE(m.state, 'dropped'),
        COALESCE(m.attempts, 0), m.last_error, m.finished_at, m.claim, m.claimed_until
    FROM codes c JOIN accounts a ON a.id = c.account_id
    LEFT JOIN mail_queue m ON m.id = (SELECT MAX(id) FROM mail_queue WHERE code_id = c.id);

    CREATE TABLE notices (
        id            INTEGER PRIMARY KEY,
        account_id    INTEGER NOT NULL REFERENCES accounts (id),
        kind          TEXT    NOT NULL CHECK (kind IN ('password_changed', 'email_changed_old',
                                  'email_changed_new', 'channel_suspended')),
        detail        TEXT,
        recipient     TEXT    NOT NULL,
        created_at    INTEGER NOT NULL,
        state         TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dropped')),
        attempts      INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT,
        finished_at   INTEGER,
        claim         TEXT,
        claimed_until INTEGER
    );
    -- Notices take ids after every code, so a message id names one message.
    INSERT INTO notices (id, account_id, kind, recipient, created_at, state, attempts,
        last_error, finished_at, claim, claimed_until)
    SELECT (SELECT COALESCE(MAX(id), 0) FROM codes_v3) + m.id, m.account_id, m.kind,
        m.recipient, m.created_at, m.state, m.attempts, m.last_error, m.finished_at, m.claim,
        m.claimed_until
    FROM mail_queue m WHERE m.code_id IS NULL;

    -- Message ids (codes and notices share them), never reused.
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO counters (name, value) SELECT 'mail', 1 + MAX(
        (SELECT COALESCE(MAX(id), 0) FROM codes_v3), (SELECT COALESCE(MAX(id), 0) FROM notices));

    UPDATE accounts SET
        live_code_id = (SELECT MAX(id) FROM codes_v3 c WHERE c.account_id = accounts.id
                        AND c.state = 'pending'),
        request_log = COALESCE((SELECT group_concat(at, ' ') FROM (SELECT at FROM reset_requests r
                        WHERE r.account_id = accounts.id ORDER BY at DESC LIMIT 5)), ''),
        -- The old rule disabled recovery for good after 20 failures; the
        -- new one suspends it for 24 h.
        recovery_suspended_until = CASE WHEN failed_confirms >= 20
            THEN CAST(strftime('%s', 'now') AS INTEGER) + 86400 END,
        failed_confirms = CASE WHEN failed_confirms >= 20 THEN 0 ELSE failed_confirms END;

    DROP TABLE mail_queue;
    DROP TABLE reset_requests;
    DROP TABLE codes;
    ALTER TABLE codes_v3 RENAME TO codes;
    -- The purge walks this index; nothing keyed by account is touched.
    CREATE INDEX codes_by_end ON codes (ends_at);
    CREATE INDEX codes_queued ON codes (id) WHERE mail_state = 'queued';
    CREATE INDEX notices_queued ON notices (id) WHERE state = 'queued';
    CREATE INDEX notices_by_finish ON notices (finished_at) WHERE finished_at IS NOT NULL;
    "#,
    // 4: the purge walks the codes in id order (the table's own order), so
    // it writes each page once however finished and live codes are mixed;
    // the index by end it walked before only cost every write.
    r#"
    DROP INDEX codes_by_end;
    "#,
    // 5: a deleted account's audit rows name it by its pseudonym only, with
    // no account id: SQLite gives a new account the highest id again once
    // it is free, and that account must not inherit a deleted person's
    // history (nor `audit --user` show it).
    r#"
    UPDATE audit SET account_id = NULL WHERE subject LIKE 'borrado-%';
    "#,
];

pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Applies the missing migrations up to `target`, each in its own
/// transaction. Safe from several processes at once: the version is
/// re-read under the write lock.
pub fn migrate_to(conn: &mut Connection, target: i64) -> rusqlite::Result<()> {
    loop {
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v >= target {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v >= target {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[v as usize])?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))?;
        tx.commit()?;
    }
}
