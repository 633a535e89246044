//! The audit log on SQLite.

use super::SqliteTxn;
use crate::store::{
    Audit, AuditEntry, AuditFilter, AuditRow, Each, Error, PII_DETAIL_EVENTS, Result,
};
use rusqlite::params;

pub(super) const COLUMNS: &str = "id, at, agent, account_id, subject, event, outcome, detail";

pub(super) fn from_row(r: &rusqlite::Row<'_>) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        at: r.get(1)?,
        agent: r.get(2)?,
        account_id: r.get(3)?,
        subject: r.get(4)?,
        event: r.get(5)?,
        outcome: r.get(6)?,
        detail: r.get(7)?,
    })
}

impl Audit for SqliteTxn<'_> {
    fn audit(&mut self, e: &AuditEntry<'_>, now: i64) -> Result<()> {
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

    fn for_each_audit(&mut self, q: &AuditFilter, f: Each<'_, AuditRow>) -> Result<()> {
        let limit = q.limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64);
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {COLUMNS} FROM audit WHERE (?1 IS NULL OR account_id = ?1) \
             AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3) \
             AND (?4 IS NULL OR event = ?4 OR substr(event, 1, length(?4) + 1) = ?4 || '.') \
             AND (?5 IS NULL OR agent = ?5) AND (?7 IS NULL OR subject = ?7) \
             ORDER BY id DESC LIMIT ?6"
        ))?;
        let mut rows = stmt.query(params![
            q.account_id,
            q.since,
            q.until,
            q.event,
            q.agent,
            limit,
            q.subject
        ])?;
        while let Some(r) = rows.next()? {
            f(from_row(r)?).map_err(Error::stopped)?;
        }
        Ok(())
    }

    fn pseudonymize_audit(&mut self, account_id: i64, pseudonym: &str) -> Result<u64> {
        self.tx.execute_batch("PRAGMA secure_delete = ON")?;
        let pii: Vec<String> = PII_DETAIL_EVENTS.iter().map(|e| format!("'{e}'")).collect();
        let n = self.tx.execute(
            &format!(
                "UPDATE audit SET subject = ?2, account_id = NULL, \
                 detail = CASE WHEN event IN ({}) THEN NULL ELSE detail END \
                 WHERE account_id = ?1",
                pii.join(", ")
            ),
            params![account_id, pseudonym],
        )?;
        Ok(n as u64)
    }
}

/// For `Whole::load`: an audit row as it was.
pub(super) fn load(tx: &rusqlite::Transaction<'_>, a: &AuditRow) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO audit ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        a.id,
        a.at,
        a.agent,
        a.account_id,
        a.subject,
        a.event,
        a.outcome,
        a.detail
    ])?;
    Ok(())
}
