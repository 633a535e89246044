//! Whole-database operations on SQLite: `db status` counts and `db copy`.

use super::{SqliteTxn, accounts, audit, codes, mail};
use crate::store::{Counts, Each, Error, Record, Result, RowCounts, Whole};
use rusqlite::params;

impl SqliteTxn<'_> {
    fn count(&self, sql: &str, args: impl rusqlite::Params) -> Result<i64> {
        Ok(self.tx.query_row(sql, args, |r| r.get(0))?)
    }
}

impl Whole for SqliteTxn<'_> {
    fn counts(&mut self, now: i64) -> Result<Counts> {
        Ok(Counts {
            accounts: self.count("SELECT COUNT(*) FROM accounts", [])?,
            codes_pending: self.count(
                "SELECT COUNT(*) FROM codes WHERE state = 'pending' AND ends_at > ?1",
                params![now],
            )?,
            mail_queued: self.count(
                "SELECT (SELECT COUNT(*) FROM codes WHERE mail_state = 'queued') + \
                 (SELECT COUNT(*) FROM notices WHERE state = 'queued')",
                [],
            )?,
            audit: self.count("SELECT COUNT(*) FROM audit", [])?,
        })
    }

    fn claim_for_load(&mut self) -> Result<RowCounts> {
        // A write transaction is BEGIN IMMEDIATE: no other writer until it
        // ends.
        self.row_counts()
    }

    fn row_counts(&mut self) -> Result<RowCounts> {
        let codes = self.count("SELECT COUNT(*) FROM codes", [])?;
        Ok(RowCounts {
            accounts: self.count("SELECT COUNT(*) FROM accounts", [])?,
            codes,
            mail: codes + self.count("SELECT COUNT(*) FROM notices", [])?,
            audit: self.count("SELECT COUNT(*) FROM audit", [])?,
        })
    }

    fn dump(&mut self, f: Each<'_, Record>) -> Result<()> {
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {} FROM accounts ORDER BY id",
            accounts::COLUMNS
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(Record::Account(Box::new(accounts::from_row(r)?))).map_err(Error::stopped)?;
        }
        let mut stmt = self
            .tx
            .prepare(&format!("SELECT {} FROM codes ORDER BY id", codes::COLUMNS))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(Record::Code(Box::new(codes::from_row(r, 0)?))).map_err(Error::stopped)?;
        }
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {} FROM notices ORDER BY id",
            mail::NOTICE_COLUMNS
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(Record::Notice(Box::new(mail::notice_from_row(r)?))).map_err(Error::stopped)?;
        }
        let mut stmt = self
            .tx
            .prepare(&format!("SELECT {} FROM audit ORDER BY id", audit::COLUMNS))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            f(Record::Audit(Box::new(audit::from_row(r)?))).map_err(Error::stopped)?;
        }
        Ok(())
    }

    fn load(&mut self, r: &Record) -> Result<()> {
        match r {
            Record::Account(a) => accounts::load(&self.tx, a),
            Record::Code(c) => codes::load(&self.tx, c),
            Record::Notice(n) => mail::load(&self.tx, n),
            Record::Audit(a) => audit::load(&self.tx, a),
        }
    }

    fn finish_load(&mut self) -> Result<()> {
        self.tx.execute(
            "UPDATE counters SET value = 1 + MAX(value - 1, \
             (SELECT COALESCE(MAX(id), 0) FROM codes), (SELECT COALESCE(MAX(id), 0) FROM notices)) \
             WHERE name = 'mail'",
            [],
        )?;
        Ok(())
    }
}
