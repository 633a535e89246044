//! Schema migrations, tracked in SQLite's `user_version`.
//!
//! Invariants:
//! - Append-only. Never edit or remove an entry: databases in the field were
//!   built by it. Entry `i` moves a database from version `i` to `i + 1`.
//! - Each entry runs in its own `BEGIN IMMEDIATE` transaction together with
//!   the `user_version` bump, so a crash leaves the database at a version.
//! - Timestamps are UTC Unix seconds (INTEGER).

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
];

pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}
