//! The audit log on PostgreSQL.

use super::{PgTxn, get};
use crate::store::{
    Audit, AuditEntry, AuditFilter, AuditRow, Each, Error, PII_DETAIL_EVENTS, Result,
};
use postgres::Row;

pub(super) const COLUMNS: &str = "id, at, agent, account_id, subject, event, outcome, detail";

pub(super) fn from_row(r: &Row) -> Result<AuditRow> {
    Ok(AuditRow {
        id: get(r, 0)?,
        at: get(r, 1)?,
        agent: get(r, 2)?,
        account_id: get(r, 3)?,
        subject: get(r, 4)?,
        event: get(r, 5)?,
        outcome: get(r, 6)?,
        detail: get(r, 7)?,
    })
}

impl Audit for PgTxn<'_> {
    fn audit(&mut self, e: &AuditEntry<'_>, now: i64) -> Result<()> {
        self.exec(
            "INSERT INTO audit (at, agent, account_id, subject, event, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &now,
                &e.agent,
                &e.account_id,
                &e.subject,
                &e.event,
                &e.outcome,
                &e.detail,
            ],
        )?;
        Ok(())
    }

    fn for_each_audit(&mut self, q: &AuditFilter, f: Each<'_, AuditRow>) -> Result<()> {
        let limit: Option<i64> = q.limit.map(|l| l.min(i64::MAX as u64) as i64);
        self.each_row(
            &format!(
                "SELECT {COLUMNS} FROM audit WHERE ($1::BIGINT IS NULL OR account_id = $1) \
                 AND ($2::BIGINT IS NULL OR at >= $2) AND ($3::BIGINT IS NULL OR at < $3) \
                 AND ($4::TEXT IS NULL OR event = $4 OR left(event, length($4) + 1) = $4 || '.') \
                 AND ($5::TEXT IS NULL OR agent = $5) AND ($7::TEXT IS NULL OR subject = $7) \
                 ORDER BY id DESC LIMIT $6"
            ),
            &[
                &q.account_id,
                &q.since,
                &q.until,
                &q.event,
                &q.agent,
                &limit,
                &q.subject,
            ],
            |r| f(from_row(r)?).map_err(Error::stopped),
        )
    }

    fn pseudonymize_audit(&mut self, account_id: i64, pseudonym: &str) -> Result<u64> {
        let pii: Vec<&str> = PII_DETAIL_EVENTS.to_vec();
        self.exec(
            "UPDATE audit SET subject = $2, account_id = NULL, \
             detail = CASE WHEN event = ANY($3) THEN NULL ELSE detail END WHERE account_id = $1",
            &[&account_id, &pseudonym, &pii],
        )
    }
}

/// For `db copy`: an audit row as `COPY` text fields.
pub(super) fn copy_fields(a: &AuditRow) -> Vec<Option<String>> {
    vec![
        Some(a.id.to_string()),
        Some(a.at.to_string()),
        Some(a.agent.clone()),
        a.account_id.map(|v| v.to_string()),
        a.subject.clone(),
        Some(a.event.clone()),
        Some(a.outcome.clone()),
        a.detail.clone(),
    ]
}
