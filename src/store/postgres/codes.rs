//! Recovery codes on PostgreSQL: one row per request, holding the code and
//! its message, found from the account through `accounts.live_code_id`.

use super::{PgTxn, get};
use crate::domain::account::AccountType;
use crate::domain::nit::Nit;
use crate::store::{
    CodeRecord, CodeRow, CodeState, Codes, Delivery, Each, Error, LiveCode, MailState, NewCode,
    PurgeBatch, PurgeCounts, Result, bad_value, purge_bound,
};
use postgres::Row;

pub(super) const COLUMNS: &str = "id, account_id, code_hash, created_at, expires_at, ends_at, \
     attempts, state, recipient, mail_state, mail_attempts, last_error, mail_finished_at, claim, \
     claimed_until";

/// A code row from `COLUMNS` starting at column `at`.
pub(super) fn from_row(r: &Row, at: usize) -> Result<CodeRecord> {
    let state: String = get(r, at + 7)?;
    let mail_state: String = get(r, at + 9)?;
    Ok(CodeRecord {
        id: get(r, at)?,
        account_id: get(r, at + 1)?,
        hash: get(r, at + 2)?,
        created_at: get(r, at + 3)?,
        expires_at: get(r, at + 4)?,
        ends_at: get(r, at + 5)?,
        attempts: get(r, at + 6)?,
        state: CodeState::from_stored(&state)?,
        mail: Delivery {
            recipient: get(r, at + 8)?,
            state: MailState::from_stored(&mail_state)?,
            attempts: get(r, at + 10)?,
            last_error: get(r, at + 11)?,
            finished_at: get(r, at + 12)?,
            claim: get(r, at + 13)?,
            claimed_until: get(r, at + 14)?,
        },
    })
}

impl PgTxn<'_> {
    fn replace_live(&mut self, account_id: i64, now: i64) -> Result<u64> {
        self.exec(
            "UPDATE codes SET state = 'replaced', ends_at = LEAST(ends_at, $2) \
             WHERE id = (SELECT live_code_id FROM accounts WHERE id = $1) \
             AND account_id = $1 AND state = 'pending'",
            &[&account_id, &now],
        )
    }
}

impl Codes for PgTxn<'_> {
    fn insert_code(&mut self, c: &NewCode<'_>) -> Result<i64> {
        self.replace_live(c.account_id, c.now)?;
        let (claim, until) = match c.claim {
            Some(cl) => (Some(cl.token.as_str()), Some(cl.until)),
            None => (None, None),
        };
        let row = self.one(
            "INSERT INTO codes (account_id, code_hash, created_at, expires_at, ends_at, \
             recipient, claim, claimed_until) VALUES ($1, $2, $3, $4, $4, $5, $6, $7) RETURNING id",
            &[
                &c.account_id,
                &c.hash,
                &c.now,
                &c.expires_at,
                &c.recipient.as_str(),
                &claim,
                &until,
            ],
        )?;
        let id: i64 = get(&row, 0)?;
        self.exec(
            "UPDATE accounts SET live_code_id = $2 WHERE id = $1",
            &[&c.account_id, &id],
        )?;
        Ok(id)
    }

    fn live_code(&mut self, account_id: i64, now: i64) -> Result<Option<LiveCode>> {
        let row = self.opt(
            "SELECT c.id, c.account_id, c.code_hash, c.attempts, c.created_at, c.expires_at \
             FROM accounts a JOIN codes c ON c.id = a.live_code_id AND c.account_id = a.id \
             WHERE a.id = $1 AND c.state = 'pending' AND c.ends_at > $2",
            &[&account_id, &now],
        )?;
        row.map(|r| {
            Ok(LiveCode {
                id: get(&r, 0)?,
                account_id: get(&r, 1)?,
                hash: get(&r, 2)?,
                attempts: get(&r, 3)?,
                created_at: get(&r, 4)?,
                expires_at: get(&r, 5)?,
            })
        })
        .transpose()
    }

    fn code(&mut self, id: i64) -> Result<Option<CodeRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM codes WHERE id = $1");
        self.opt(&sql, &[&id])?.map(|r| from_row(&r, 0)).transpose()
    }

    fn count_code_attempt(&mut self, code_id: i64) -> Result<bool> {
        let n = self.exec(
            "UPDATE codes SET attempts = attempts + 1 WHERE id = $1 AND state = 'pending'",
            &[&code_id],
        )?;
        Ok(n == 1)
    }

    fn refund_code_attempt(&mut self, code_id: i64) -> Result<()> {
        self.exec(
            "UPDATE codes SET attempts = GREATEST(attempts - 1, 0) WHERE id = $1",
            &[&code_id],
        )?;
        Ok(())
    }

    fn end_code(&mut self, code_id: i64, state: CodeState, now: i64) -> Result<bool> {
        if state == CodeState::Pending {
            return Err(Error::Other("end_code(pending)".into()));
        }
        let n = self.exec(
            "UPDATE codes SET state = $2, ends_at = LEAST(ends_at, $3) \
             WHERE id = $1 AND state = 'pending' AND ($2 <> 'used' OR ends_at > $3)",
            &[&code_id, &state.as_str(), &now],
        )?;
        Ok(n == 1)
    }

    fn kill_codes(&mut self, account_id: i64, now: i64) -> Result<u64> {
        self.replace_live(account_id, now)
    }

    fn rekey_code(&mut self, code_id: i64, hash: &str, now: i64) -> Result<bool> {
        let n = self.exec(
            "UPDATE codes SET code_hash = $2 WHERE id = $1 AND state = 'pending' AND ends_at > $3",
            &[&code_id, &hash, &now],
        )?;
        Ok(n == 1)
    }

    fn for_each_code(&mut self, f: Each<'_, CodeRow>) -> Result<()> {
        let cols: String = COLUMNS
            .split(", ")
            .map(|c| format!("c.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.each_row(
            &format!(
                "SELECT a.kind, a.nit, {cols} FROM codes c JOIN accounts a ON a.id = c.account_id \
                 ORDER BY c.id DESC"
            ),
            &[],
            |r| {
                let kind: String = get(r, 0)?;
                let kind = AccountType::from_stored(&kind)
                    .ok_or_else(|| bad_value("accounts.kind", &kind))?;
                let row = CodeRow {
                    kind,
                    nit: Nit::from_stored(get(r, 1)?),
                    code: from_row(r, 2)?,
                };
                f(row).map_err(Error::stopped)
            },
        )
    }

    fn purge_counts(&mut self, now: i64) -> Result<PurgeCounts> {
        let r = self.one(
            "SELECT (SELECT COUNT(*) FROM codes WHERE ends_at <= $1), \
             (SELECT COUNT(*) FROM notices WHERE finished_at <= $1)",
            &[&now],
        )?;
        let codes: i64 = get(&r, 0)?;
        let notices: i64 = get(&r, 1)?;
        Ok(PurgeCounts {
            codes: codes as u64,
            mails: (codes + notices) as u64,
        })
    }

    fn purge_batch(&mut self, now: i64, after: i64, span: u64, limit: u64) -> Result<PurgeBatch> {
        let (span, limit) = (purge_bound(span), purge_bound(limit));
        let window_end = after.saturating_add(span);
        let last: Option<i64> = self
            .opt(
                "SELECT id FROM codes WHERE id > $1 AND id <= $2 AND ends_at <= $3 \
                 ORDER BY id OFFSET $4 LIMIT 1",
                &[&after, &window_end, &now, &(limit - 1)],
            )?
            .map(|r| get(&r, 0))
            .transpose()?;
        let codes = self.exec(
            "DELETE FROM codes WHERE id > $1 AND id <= $2 AND ends_at <= $3",
            &[&after, &last.unwrap_or(window_end), &now],
        )?;
        let next = match last {
            Some(l) => Some(l),
            None => {
                let r = self.one("SELECT MIN(id) FROM codes WHERE id > $1", &[&window_end])?;
                get::<Option<i64>>(&r, 0)?.map(|id| id - 1)
            }
        };
        let notices = self.exec(
            "DELETE FROM notices WHERE id IN (SELECT id FROM notices \
             WHERE finished_at <= $1 ORDER BY finished_at LIMIT $2)",
            &[&now, &limit],
        )?;
        Ok(PurgeBatch {
            codes,
            notices,
            next,
        })
    }
}

/// For `db copy`: a code row as `COPY` text fields.
pub(super) fn copy_fields(c: &CodeRecord) -> Vec<Option<String>> {
    vec![
        Some(c.id.to_string()),
        Some(c.account_id.to_string()),
        c.hash.clone(),
        Some(c.created_at.to_string()),
        Some(c.expires_at.to_string()),
        Some(c.ends_at.to_string()),
        Some(c.attempts.to_string()),
        Some(c.state.as_str().to_string()),
        Some(c.mail.recipient.clone()),
        Some(c.mail.state.as_str().to_string()),
        Some(c.mail.attempts.to_string()),
        c.mail.last_error.clone(),
        c.mail.finished_at.map(|v| v.to_string()),
        c.mail.claim.clone(),
        c.mail.claimed_until.map(|v| v.to_string()),
    ]
}
