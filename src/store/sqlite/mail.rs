//! The mail queue on SQLite: a code's message lives on the code's row, any
//! other message (a notice) in `notices`. Both take their ids from one
//! counter, so a message id names exactly one row of one of the tables.

use super::SqliteTxn;
use super::codes::{self, next_mail_id};
use crate::store::{
    Claim, Delivery, Each, Error, Mail, MailKind, MailRow, MailState, NewNotice, NoticeRecord,
    Result,
};
use rusqlite::params;

pub(super) const NOTICE_COLUMNS: &str = "id, account_id, kind, detail, recipient, created_at, \
     state, attempts, last_error, finished_at, claim, claimed_until";

pub(super) fn notice_from_row(r: &rusqlite::Row<'_>) -> Result<NoticeRecord> {
    let kind: String = r.get(2)?;
    let state: String = r.get(6)?;
    Ok(NoticeRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        kind: MailKind::from_stored(&kind)?,
        detail: r.get(3)?,
        created_at: r.get(5)?,
        mail: Delivery {
            recipient: r.get(4)?,
            state: MailState::from_stored(&state)?,
            attempts: r.get(7)?,
            last_error: r.get(8)?,
            finished_at: r.get(9)?,
            claim: r.get(10)?,
            claimed_until: r.get(11)?,
        },
    })
}

fn notice_mail(n: NoticeRecord) -> MailRow {
    MailRow {
        id: n.id,
        account_id: n.account_id,
        code_id: None,
        kind: n.kind,
        detail: n.detail,
        created_at: n.created_at,
        mail: n.mail,
    }
}

fn code_mail(c: crate::store::CodeRecord) -> MailRow {
    MailRow {
        id: c.id,
        account_id: c.account_id,
        code_id: Some(c.id),
        kind: MailKind::ResetCode,
        detail: None,
        created_at: c.created_at,
        mail: c.mail,
    }
}

impl SqliteTxn<'_> {
    /// Runs `codes_sql` on the codes table, and `notices_sql` on notices if
    /// no code row matched; returns whether a row changed.
    fn on_message(
        &self,
        codes_sql: &str,
        notices_sql: &str,
        args: impl rusqlite::Params + Clone,
    ) -> Result<bool> {
        if self.tx.prepare_cached(codes_sql)?.execute(args.clone())? == 1 {
            return Ok(true);
        }
        Ok(self.tx.prepare_cached(notices_sql)?.execute(args)? == 1)
    }
}

impl Mail for SqliteTxn<'_> {
    fn enqueue_notice(&mut self, n: &NewNotice<'_>) -> Result<i64> {
        let id = next_mail_id(&self.tx)?;
        let (claim, until) = match n.claim {
            Some(c) => (Some(c.token.as_str()), Some(c.until)),
            None => (None, None),
        };
        self.tx
            .prepare_cached(
                "INSERT INTO notices (id, account_id, kind, detail, recipient, created_at, claim, \
                 claimed_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                id,
                n.account_id,
                n.kind.as_str(),
                n.detail,
                n.recipient.as_str(),
                n.now,
                claim,
                until
            ])?;
        Ok(id)
    }

    fn claim_mail(&mut self, id: i64, claim: &Claim, now: i64) -> Result<bool> {
        self.on_message(
            "UPDATE codes SET claim = ?2, claimed_until = ?3 WHERE id = ?1 \
             AND mail_state = 'queued' AND (claimed_until IS NULL OR claimed_until <= ?4)",
            "UPDATE notices SET claim = ?2, claimed_until = ?3 WHERE id = ?1 \
             AND state = 'queued' AND (claimed_until IS NULL OR claimed_until <= ?4)",
            params![id, claim.token, claim.until, now],
        )
    }

    fn renew_claim(&mut self, id: i64, claim: &Claim) -> Result<bool> {
        self.on_message(
            "UPDATE codes SET claimed_until = ?3 WHERE id = ?1 AND mail_state = 'queued' \
             AND claim = ?2",
            "UPDATE notices SET claimed_until = ?3 WHERE id = ?1 AND state = 'queued' \
             AND claim = ?2",
            params![id, claim.token, claim.until],
        )
    }

    fn mail(&mut self, id: i64) -> Result<Option<MailRow>> {
        if let Some(c) = crate::store::Codes::code(self, id)? {
            return Ok(Some(code_mail(c)));
        }
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE id = ?1"
        ))?;
        let mut rows = stmt.query(params![id])?;
        match rows.next()? {
            Some(r) => Ok(Some(notice_mail(notice_from_row(r)?))),
            None => Ok(None),
        }
    }

    fn queued_mail_ids(&mut self) -> Result<Vec<i64>> {
        let mut stmt = self.tx.prepare(
            "SELECT id FROM codes WHERE mail_state = 'queued' \
             UNION ALL SELECT id FROM notices WHERE state = 'queued' ORDER BY 1",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn mail_sent(&mut self, id: i64, token: &str, now: i64) -> Result<bool> {
        self.on_message(
            "UPDATE codes SET mail_state = 'sent', mail_attempts = mail_attempts + 1, \
             last_error = NULL, mail_finished_at = ?3, claim = NULL, claimed_until = NULL \
             WHERE id = ?1 AND claim = ?2",
            "UPDATE notices SET state = 'sent', attempts = attempts + 1, last_error = NULL, \
             finished_at = ?3, claim = NULL, claimed_until = NULL WHERE id = ?1 AND claim = ?2",
            params![id, token, now],
        )
    }

    fn mail_failed(&mut self, id: i64, token: &str, error: &str) -> Result<bool> {
        self.on_message(
            "UPDATE codes SET mail_attempts = mail_attempts + 1, last_error = ?3, claim = NULL, \
             claimed_until = NULL WHERE id = ?1 AND claim = ?2",
            "UPDATE notices SET attempts = attempts + 1, last_error = ?3, claim = NULL, \
             claimed_until = NULL WHERE id = ?1 AND claim = ?2",
            params![id, token, error],
        )
    }

    fn mail_dropped(&mut self, id: i64, reason: &str, now: i64) -> Result<()> {
        self.on_message(
            "UPDATE codes SET mail_state = 'dropped', last_error = ?2, mail_finished_at = ?3, \
             claim = NULL, claimed_until = NULL WHERE id = ?1",
            "UPDATE notices SET state = 'dropped', last_error = ?2, finished_at = ?3, \
             claim = NULL, claimed_until = NULL WHERE id = ?1",
            params![id, reason, now],
        )?;
        Ok(())
    }

    fn for_each_mail(&mut self, f: Each<'_, MailRow>) -> Result<()> {
        // Two streams in id order, merged: never a sort of the whole queue.
        let mut cs = self.tx.prepare(&format!(
            "SELECT {} FROM codes ORDER BY id DESC",
            codes::COLUMNS
        ))?;
        let mut ns = self.tx.prepare(&format!(
            "SELECT {NOTICE_COLUMNS} FROM notices ORDER BY id DESC"
        ))?;
        let mut crows = cs.query([])?;
        let mut nrows = ns.query([])?;
        let mut c = crows.next()?.map(|r| codes::from_row(r, 0)).transpose()?;
        let mut n = nrows.next()?.map(notice_from_row).transpose()?;
        loop {
            let take_code = match (&c, &n) {
                (Some(a), Some(b)) => a.id > b.id,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return Ok(()),
            };
            if take_code {
                if let Some(row) = c.take() {
                    f(code_mail(row)).map_err(Error::stopped)?;
                }
                c = crows.next()?.map(|r| codes::from_row(r, 0)).transpose()?;
            } else {
                if let Some(row) = n.take() {
                    f(notice_mail(row)).map_err(Error::stopped)?;
                }
                n = nrows.next()?.map(notice_from_row).transpose()?;
            }
        }
    }
}

/// For `Whole::load`: a notice row as it was.
pub(super) fn load(tx: &rusqlite::Transaction<'_>, n: &NoticeRecord) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO notices ({NOTICE_COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(params![
        n.id,
        n.account_id,
        n.kind.as_str(),
        n.detail,
        n.mail.recipient,
        n.created_at,
        n.mail.state.as_str(),
        n.mail.attempts,
        n.mail.last_error,
        n.mail.finished_at,
        n.mail.claim,
        n.mail.claimed_until,
    ])?;
    Ok(())
}
