//! The mail queue on PostgreSQL: a code's message lives on the code's row,
//! any other message (a notice) in `notices`; both take ids from the
//! `mail_ids` sequence, so an id names exactly one message.

use super::{PgTxn, codes, get};
use crate::store::{
    Claim, CodeRecord, Delivery, Each, Error, Mail, MailKind, MailRow, MailState, NewNotice,
    NoticeRecord, Result,
};
use postgres::Row;

pub(super) const NOTICE_COLUMNS: &str = "id, account_id, kind, detail, recipient, created_at, \
     state, attempts, last_error, finished_at, claim, claimed_until";

pub(super) fn notice_from_row(r: &Row) -> Result<NoticeRecord> {
    let kind: String = get(r, 2)?;
    let state: String = get(r, 6)?;
    Ok(NoticeRecord {
        id: get(r, 0)?,
        account_id: get(r, 1)?,
        kind: MailKind::from_stored(&kind)?,
        detail: get(r, 3)?,
        created_at: get(r, 5)?,
        mail: Delivery {
            recipient: get(r, 4)?,
            state: MailState::from_stored(&state)?,
            attempts: get(r, 7)?,
            last_error: get(r, 8)?,
            finished_at: get(r, 9)?,
            claim: get(r, 10)?,
            claimed_until: get(r, 11)?,
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

fn code_mail(c: CodeRecord) -> MailRow {
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

impl PgTxn<'_> {
    /// `codes_sql` on codes, else `notices_sql` on notices; true if a row
    /// changed. Each is one conditional UPDATE: PostgreSQL re-checks its
    /// condition after waiting for a concurrent writer of the row, so two
    /// claims of one message cannot both succeed.
    fn on_message(
        &mut self,
        codes_sql: &str,
        notices_sql: &str,
        params: super::Params<'_>,
    ) -> Result<bool> {
        if self.exec(codes_sql, params)? == 1 {
            return Ok(true);
        }
        Ok(self.exec(notices_sql, params)? == 1)
    }
}

impl Mail for PgTxn<'_> {
    fn enqueue_notice(&mut self, n: &NewNotice<'_>) -> Result<i64> {
        let (claim, until) = match n.claim {
            Some(c) => (Some(c.token.as_str()), Some(c.until)),
            None => (None, None),
        };
        let r = self.one(
            "INSERT INTO notices (account_id, kind, detail, recipient, created_at, claim, \
             claimed_until) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &n.account_id,
                &n.kind.as_str(),
                &n.detail,
                &n.recipient.as_str(),
                &n.now,
                &claim,
                &until,
            ],
        )?;
        get(&r, 0)
    }

    fn claim_mail(&mut self, id: i64, claim: &Claim, now: i64) -> Result<bool> {
        // A message another sender is claiming right now is skipped, not
        // waited for: that sender will deliver it.
        self.on_message(
            "UPDATE codes SET claim = $2, claimed_until = $3 WHERE id = (SELECT id FROM codes \
             WHERE id = $1 AND mail_state = 'queued' \
             AND (claimed_until IS NULL OR claimed_until <= $4) FOR UPDATE SKIP LOCKED)",
            "UPDATE notices SET claim = $2, claimed_until = $3 WHERE id = (SELECT id FROM notices \
             WHERE id = $1 AND state = 'queued' \
             AND (claimed_until IS NULL OR claimed_until <= $4) FOR UPDATE SKIP LOCKED)",
            &[&id, &claim.token, &claim.until, &now],
        )
    }

    fn renew_claim(&mut self, id: i64, claim: &Claim) -> Result<bool> {
        self.on_message(
            "UPDATE codes SET claimed_until = $3 WHERE id = $1 AND mail_state = 'queued' \
             AND claim = $2",
            "UPDATE notices SET claimed_until = $3 WHERE id = $1 AND state = 'queued' \
             AND claim = $2",
            &[&id, &claim.token, &claim.until],
        )
    }

    fn mail(&mut self, id: i64) -> Result<Option<MailRow>> {
        if let Some(c) = crate::store::Codes::code(self, id)? {
            return Ok(Some(code_mail(c)));
        }
        let sql = format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE id = $1");
        self.opt(&sql, &[&id])?
            .map(|r| notice_from_row(&r).map(notice_mail))
            .transpose()
    }

    fn queued_mail_ids(&mut self) -> Result<Vec<i64>> {
        let rows = self.rows(
            "SELECT id FROM codes WHERE mail_state = 'queued' \
             UNION ALL SELECT id FROM notices WHERE state = 'queued' ORDER BY 1",
            &[],
        )?;
        rows.iter().map(|r| get(r, 0)).collect()
    }

    fn mail_sent(&mut self, id: i64, token: &str, now: i64) -> Result<bool> {
        self.on_message(
            "UPDATE codes SET mail_state = 'sent', mail_attempts = mail_attempts + 1, \
             last_error = NULL, mail_finished_at = $3, claim = NULL, claimed_until = NULL \
             WHERE id = $1 AND claim = $2",
            "UPDATE notices SET state = 'sent', attempts = attempts + 1, last_error = NULL, \
             finished_at = $3, claim = NULL, claimed_until = NULL WHERE id = $1 AND claim = $2",
            &[&id, &token, &now],
        )
    }

    fn mail_failed(&mut self, id: i64, token: &str, error: &str) -> Result<bool> {
        self.on_message(
            "UPDATE codes SET mail_attempts = mail_attempts + 1, last_error = $3, claim = NULL, \
             claimed_until = NULL WHERE id = $1 AND claim = $2",
            "UPDATE notices SET attempts = attempts + 1, last_error = $3, claim = NULL, \
             claimed_until = NULL WHERE id = $1 AND claim = $2",
            &[&id, &token, &error],
        )
    }

    fn mail_dropped(&mut self, id: i64, reason: &str, now: i64) -> Result<()> {
        self.on_message(
            "UPDATE codes SET mail_state = 'dropped', last_error = $2, mail_finished_at = $3, \
             claim = NULL, claimed_until = NULL WHERE id = $1",
            "UPDATE notices SET state = 'dropped', last_error = $2, finished_at = $3, \
             claim = NULL, claimed_until = NULL WHERE id = $1",
            &[&id, &reason, &now],
        )?;
        Ok(())
    }

    fn for_each_mail(&mut self, f: Each<'_, MailRow>) -> Result<()> {
        // One stream: a merge of the two primary-key scans, newest first.
        let sql = format!(
            "SELECT * FROM (SELECT 'c' AS t, {c}, NULL AS kind, NULL AS detail FROM codes \
             UNION ALL SELECT 'n', id, account_id, NULL, created_at, 0, 0, 0, 'pending', \
             recipient, state, attempts, last_error, finished_at, claim, claimed_until, kind, \
             detail FROM notices) m ORDER BY id DESC",
            c = codes::COLUMNS
        );
        self.each_row(&sql, &[], |r| {
            let table: String = get(r, 0)?;
            let mut code = codes::from_row(r, 1)?;
            let row = if table == "c" {
                code_mail(code)
            } else {
                let kind: String = get(r, 16)?;
                MailRow {
                    id: code.id,
                    account_id: code.account_id,
                    code_id: None,
                    kind: MailKind::from_stored(&kind)?,
                    detail: get(r, 17)?,
                    created_at: code.created_at,
                    mail: std::mem::replace(
                        &mut code.mail,
                        Delivery {
                            recipient: String::new(),
                            state: MailState::Queued,
                            attempts: 0,
                            last_error: None,
                            finished_at: None,
                            claim: None,
                            claimed_until: None,
                        },
                    ),
                }
            };
            f(row).map_err(Error::stopped)
        })
    }
}

/// For `db copy`: a notice row as `COPY` text fields.
pub(super) fn copy_fields(n: &NoticeRecord) -> Vec<Option<String>> {
    vec![
        Some(n.id.to_string()),
        Some(n.account_id.to_string()),
        Some(n.kind.as_str().to_string()),
        n.detail.clone(),
        Some(n.mail.recipient.clone()),
        Some(n.created_at.to_string()),
        Some(n.mail.state.as_str().to_string()),
        Some(n.mail.attempts.to_string()),
        n.mail.last_error.clone(),
        n.mail.finished_at.map(|v| v.to_string()),
        n.mail.claim.clone(),
        n.mail.claimed_until.map(|v| v.to_string()),
    ]
}
