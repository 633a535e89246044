//! Recovery codes on SQLite: one row per request, holding the code and its
//! message, found from the account through `accounts.live_code_id` (so no
//! index keyed by account has to be maintained when codes are purged).

use super::SqliteTxn;
use crate::domain::account::AccountType;
use crate::domain::nit::Nit;
use crate::store::{
    CodeRecord, CodeRow, CodeState, Codes, Delivery, Each, Error, LiveCode, MailState, NewCode,
    PurgeBatch, PurgeCounts, Result, bad_value, purge_bound,
};
use rusqlite::{OptionalExtension, params};

pub(super) const COLUMNS: &str = "id, account_id, code_hash, created_at, expires_at, ends_at, \
     attempts, state, recipient, mail_state, mail_attempts, last_error, mail_finished_at, claim, \
     claimed_until";

/// A code row from `COLUMNS` starting at column `at`.
pub(super) fn from_row(r: &rusqlite::Row<'_>, at: usize) -> Result<CodeRecord> {
    let state: String = r.get(at + 7)?;
    let mail_state: String = r.get(at + 9)?;
    Ok(CodeRecord {
        id: r.get(at)?,
        account_id: r.get(at + 1)?,
        hash: r.get(at + 2)?,
        created_at: r.get(at + 3)?,
        expires_at: r.get(at + 4)?,
        ends_at: r.get(at + 5)?,
        attempts: r.get(at + 6)?,
        state: CodeState::from_stored(&state)?,
        mail: Delivery {
            recipient: r.get(at + 8)?,
            state: MailState::from_stored(&mail_state)?,
            attempts: r.get(at + 10)?,
            last_error: r.get(at + 11)?,
            finished_at: r.get(at + 12)?,
            claim: r.get(at + 13)?,
            claimed_until: r.get(at + 14)?,
        },
    })
}

/// The next message id (codes and notices share them; never reused).
pub(super) fn next_mail_id(tx: &rusqlite::Transaction<'_>) -> Result<i64> {
    Ok(tx
        .prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'mail' RETURNING value - 1",
        )?
        .query_row([], |r| r.get(0))?)
}

impl SqliteTxn<'_> {
    /// Ends the account's live code as replaced; returns how many ended.
    fn replace_live(&self, account_id: i64, now: i64) -> Result<u64> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE codes SET state = 'replaced', ends_at = MIN(ends_at, ?2) \
                 WHERE id = (SELECT live_code_id FROM accounts WHERE id = ?1) \
                 AND account_id = ?1 AND state = 'pending'",
            )?
            .execute(params![account_id, now])?;
        Ok(n as u64)
    }
}

impl Codes for SqliteTxn<'_> {
    fn insert_code(&mut self, c: &NewCode<'_>) -> Result<i64> {
        self.replace_live(c.account_id, c.now)?;
        let id = next_mail_id(&self.tx)?;
        let (claim, until) = match c.claim {
            Some(cl) => (Some(cl.token.as_str()), Some(cl.until)),
            None => (None, None),
        };
        self.tx
            .prepare_cached(
                "INSERT INTO codes (id, account_id, code_hash, created_at, expires_at, ends_at, \
                 recipient, claim, claimed_until) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                id,
                c.account_id,
                c.hash,
                c.now,
                c.expires_at,
                c.recipient.as_str(),
                claim,
                until
            ])?;
        self.tx
            .prepare_cached("UPDATE accounts SET live_code_id = ?2 WHERE id = ?1")?
            .execute(params![c.account_id, id])?;
        Ok(id)
    }

    fn live_code(&mut self, account_id: i64, now: i64) -> Result<Option<LiveCode>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT c.id, c.account_id, c.code_hash, c.attempts, c.created_at, c.expires_at \
                 FROM accounts a JOIN codes c ON c.id = a.live_code_id AND c.account_id = a.id \
                 WHERE a.id = ?1 AND c.state = 'pending' AND c.ends_at > ?2",
            )?
            .query_row(params![account_id, now], |r| {
                Ok(LiveCode {
                    id: r.get(0)?,
                    account_id: r.get(1)?,
                    hash: r.get(2)?,
                    attempts: r.get(3)?,
                    created_at: r.get(4)?,
                    expires_at: r.get(5)?,
                })
            })
            .optional()?)
    }

    fn code(&mut self, id: i64) -> Result<Option<CodeRecord>> {
        let mut stmt = self
            .tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM codes WHERE id = ?1"))?;
        let mut rows = stmt.query(params![id])?;
        match rows.next()? {
            Some(r) => Ok(Some(from_row(r, 0)?)),
            None => Ok(None),
        }
    }

    fn count_code_attempt(&mut self, code_id: i64) -> Result<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE codes SET attempts = attempts + 1 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![code_id])?;
        Ok(n == 1)
    }

    fn refund_code_attempt(&mut self, code_id: i64) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE codes SET attempts = MAX(attempts - 1, 0) WHERE id = ?1")?
            .execute(params![code_id])?;
        Ok(())
    }

    fn end_code(&mut self, code_id: i64, state: CodeState, now: i64) -> Result<bool> {
        if state == CodeState::Pending {
            return Err(Error::Other("end_code(pending)".into()));
        }
        let n = self
            .tx
            .prepare_cached(
                "UPDATE codes SET state = ?2, ends_at = MIN(ends_at, ?3) \
                 WHERE id = ?1 AND state = 'pending' AND (?2 <> 'used' OR ends_at > ?3)",
            )?
            .execute(params![code_id, state.as_str(), now])?;
        Ok(n == 1)
    }

    fn kill_codes(&mut self, account_id: i64, now: i64) -> Result<u64> {
        self.replace_live(account_id, now)
    }

    fn rekey_code(&mut self, code_id: i64, hash: &str, now: i64) -> Result<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE codes SET code_hash = ?2 WHERE id = ?1 AND state = 'pending' \
                 AND ends_at > ?3",
            )?
            .execute(params![code_id, hash, now])?;
        Ok(n == 1)
    }

    fn for_each_code(&mut self, f: Each<'_, CodeRow>) -> Result<()> {
        let cols: String = COLUMNS
            .split(", ")
            .map(|c| format!("c.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = self.tx.prepare(&format!(
            "SELECT a.kind, a.nit, {cols} FROM codes c JOIN accounts a ON a.id = c.account_id \
             ORDER BY c.id DESC"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(0)?;
            let kind =
                AccountType::from_stored(&kind).ok_or_else(|| bad_value("accounts.kind", &kind))?;
            let row = CodeRow {
                kind,
                nit: Nit::from_stored(r.get(1)?),
                code: from_row(r, 2)?,
            };
            f(row).map_err(Error::stopped)?;
        }
        Ok(())
    }

    fn purge_counts(&mut self, now: i64) -> Result<PurgeCounts> {
        let codes: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM codes WHERE ends_at <= ?1",
            params![now],
            |r| r.get(0),
        )?;
        let notices: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM notices WHERE finished_at <= ?1",
            params![now],
            |r| r.get(0),
        )?;
        Ok(PurgeCounts {
            codes: codes as u64,
            mails: (codes + notices) as u64,
        })
    }

    fn purge_batch(&mut self, now: i64, after: i64, span: u64, limit: u64) -> Result<PurgeBatch> {
        let (span, limit) = (purge_bound(span), purge_bound(limit));
        let window_end = after.saturating_add(span);
        // A walk of the rowid range that stops at the `limit`-th finished
        // code: each page is read at most twice (here and in the delete).
        let last: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT id FROM codes WHERE id > ?1 AND id <= ?2 AND ends_at <= ?3 \
                 ORDER BY id LIMIT 1 OFFSET ?4",
            )?
            .query_row(params![after, window_end, now, limit - 1], |r| r.get(0))
            .optional()?;
        let end = last.unwrap_or(window_end);
        // A range of ids, not a list of them: SQLite walks it once (half the
        // time of `id IN (…)` here, BENCHMARKS.md).
        let codes = self
            .tx
            .prepare_cached("DELETE FROM codes WHERE id > ?1 AND id <= ?2 AND ends_at <= ?3")?
            .execute(params![after, end, now])?;
        let next = match last {
            Some(l) => Some(l),
            // Past the window: on to just before the next code, across any
            // gap purges have left in the ids.
            None => self
                .tx
                .prepare_cached("SELECT MIN(id) FROM codes WHERE id > ?1")?
                .query_row(params![window_end], |r| r.get::<_, Option<i64>>(0))?
                .map(|id| id - 1),
        };
        let notices = self.tx.execute(
            "DELETE FROM notices WHERE id IN (SELECT id FROM notices \
             WHERE finished_at <= ?1 ORDER BY finished_at LIMIT ?2)",
            params![now, limit],
        )?;
        Ok(PurgeBatch {
            codes: codes as u64,
            notices: notices as u64,
            next,
        })
    }
}

/// For `Whole::load`: a code row as it was.
pub(super) fn load(tx: &rusqlite::Transaction<'_>, c: &CodeRecord) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO codes ({COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?
    .execute(params![
        c.id,
        c.account_id,
        c.hash,
        c.created_at,
        c.expires_at,
        c.ends_at,
        c.attempts,
        c.state.as_str(),
        c.mail.recipient,
        c.mail.state.as_str(),
        c.mail.attempts,
        c.mail.last_error,
        c.mail.finished_at,
        c.mail.claim,
        c.mail.claimed_until,
    ])?;
    Ok(())
}
