//! Whole-database operations on PostgreSQL: `db status` counts and
//! `db copy`, whose rows go in through `COPY` a few megabytes at a time.

use super::{PgTxn, accounts, audit, codes, get, mail};
use crate::store::{Counts, Each, Error, Record, Result, RowCounts, Whole};

/// Flushed past this many bytes, so a copy of millions of rows stays flat
/// in memory.
const FLUSH_AT: usize = 8 << 20;

#[derive(Default)]
pub(super) struct CopyBuffer {
    table: Option<&'static str>,
    data: Vec<u8>,
}

/// `COPY` text format: tab-separated, `\N` for NULL, backslash escapes.
fn push_row(out: &mut Vec<u8>, fields: &[Option<String>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match f {
            None => out.extend_from_slice(b"\\N"),
            Some(s) => {
                for b in s.bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        other => out.push(other),
                    }
                }
            }
        }
    }
    out.push(b'\n');
}

fn columns(table: &str) -> &'static str {
    match table {
        "accounts" => accounts::COLUMNS,
        "codes" => codes::COLUMNS,
        "notices" => mail::NOTICE_COLUMNS,
        _ => audit::COLUMNS,
    }
}

impl PgTxn<'_> {
    pub(super) fn flush_copy(&mut self) -> Result<()> {
        let Some(table) = self.copy.table else {
            return Ok(());
        };
        if self.copy.data.is_empty() {
            return Ok(());
        }
        use std::io::Write;
        let sql = format!("COPY {table} ({}) FROM STDIN", columns(table));
        let mut w = self.tx.copy_in(&sql)?;
        w.write_all(&self.copy.data)
            .map_err(|e| Error::Other(e.to_string()))?;
        w.finish()?;
        self.copy.data.clear();
        Ok(())
    }

    fn buffer(&mut self, table: &'static str, fields: &[Option<String>]) -> Result<()> {
        if self.copy.table != Some(table) {
            self.flush_copy()?;
            self.copy.table = Some(table);
        }
        push_row(&mut self.copy.data, fields);
        if self.copy.data.len() >= FLUSH_AT {
            self.flush_copy()?;
        }
        Ok(())
    }

    fn count(&mut self, sql: &str, params: super::Params<'_>) -> Result<i64> {
        get(&self.one(sql, params)?, 0)
    }
}

impl Whole for PgTxn<'_> {
    fn counts(&mut self, now: i64) -> Result<Counts> {
        Ok(Counts {
            accounts: self.count("SELECT COUNT(*) FROM accounts", &[])?,
            codes_pending: self.count(
                "SELECT COUNT(*) FROM codes WHERE state = 'pending' AND ends_at > $1",
                &[&now],
            )?,
            mail_queued: self.count(
                "SELECT (SELECT COUNT(*) FROM codes WHERE mail_state = 'queued') + \
                 (SELECT COUNT(*) FROM notices WHERE state = 'queued')",
                &[],
            )?,
            audit: self.count("SELECT COUNT(*) FROM audit", &[])?,
        })
    }

    fn claim_for_load(&mut self) -> Result<RowCounts> {
        // SHARE ROW EXCLUSIVE conflicts with itself and with every write:
        // a second copy waits for the first (lock_timeout: 75) and then
        // finds the target not empty (65), instead of both seeing it empty
        // and the second failing on a duplicate key.
        self.tx.batch_execute(
            "LOCK TABLE accounts, codes, notices, audit IN SHARE ROW EXCLUSIVE MODE",
        )?;
        self.row_counts()
    }

    fn row_counts(&mut self) -> Result<RowCounts> {
        let codes = self.count("SELECT COUNT(*) FROM codes", &[])?;
        Ok(RowCounts {
            accounts: self.count("SELECT COUNT(*) FROM accounts", &[])?,
            codes,
            mail: codes + self.count("SELECT COUNT(*) FROM notices", &[])?,
            audit: self.count("SELECT COUNT(*) FROM audit", &[])?,
        })
    }

    fn dump(&mut self, f: Each<'_, Record>) -> Result<()> {
        self.each_row(
            &format!("SELECT {} FROM accounts ORDER BY id", accounts::COLUMNS),
            &[],
            |r| f(Record::Account(Box::new(accounts::from_row(r)?))).map_err(Error::stopped),
        )?;
        self.each_row(
            &format!("SELECT {} FROM codes ORDER BY id", codes::COLUMNS),
            &[],
            |r| f(Record::Code(Box::new(codes::from_row(r, 0)?))).map_err(Error::stopped),
        )?;
        self.each_row(
            &format!("SELECT {} FROM notices ORDER BY id", mail::NOTICE_COLUMNS),
            &[],
            |r| f(Record::Notice(Box::new(mail::notice_from_row(r)?))).map_err(Error::stopped),
        )?;
        self.each_row(
            &format!("SELECT {} FROM audit ORDER BY id", audit::COLUMNS),
            &[],
            |r| f(Record::Audit(Box::new(audit::from_row(r)?))).map_err(Error::stopped),
        )
    }

    fn load(&mut self, r: &Record) -> Result<()> {
        match r {
            Record::Account(a) => self.buffer("accounts", &accounts::copy_fields(a)),
            Record::Code(c) => self.buffer("codes", &codes::copy_fields(c)),
            Record::Notice(n) => self.buffer("notices", &mail::copy_fields(n)),
            Record::Audit(a) => self.buffer("audit", &audit::copy_fields(a)),
        }
    }

    fn finish_load(&mut self) -> Result<()> {
        self.flush_copy()?;
        self.tx.batch_execute(
            "SELECT setval(pg_get_serial_sequence('accounts', 'id'), \
                 COALESCE((SELECT MAX(id) FROM accounts), 0) + 1, false); \
             SELECT setval(pg_get_serial_sequence('audit', 'id'), \
                 COALESCE((SELECT MAX(id) FROM audit), 0) + 1, false); \
             SELECT setval('mail_ids', GREATEST( \
                 COALESCE((SELECT MAX(id) FROM codes), 0), \
                 COALESCE((SELECT MAX(id) FROM notices), 0)) + 1, false);",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes() {
        let mut out = Vec::new();
        push_row(
            &mut out,
            &[Some("a\tb\\c\nd\re".into()), None, Some(String::new())],
        );
        assert_eq!(out, b"a\\tb\\\\c\\nd\\re\t\\N\t\n");
    }
}
