//! The database as a whole: `db status` and `db copy`.
//!
//! Invariants of a copy:
//! - The target must be empty (no row in any table); otherwise nothing is
//!   written and the copy is refused.
//! - Everything is read from one snapshot of the source and written in one
//!   transaction on the target, ids included, so a pending code, a queued
//!   message and the audit trail all keep working there.
//! - Row counts are compared after writing and before committing: a copy
//!   that does not match is rolled back.

use crate::error::{Error, Result};
use crate::i18n::{M, tf};
use crate::store::{Counts, Engine, Record, RowCounts, Store};

pub struct Status {
    pub engine: Engine,
    pub schema_version: i64,
    pub counts: Counts,
}

pub fn status(store: &mut Store, now: i64) -> Result<Status> {
    let schema_version = store.schema_version()?;
    let counts = store.read(|tx| Ok(tx.counts(now)?))?;
    Ok(Status {
        engine: store.engine(),
        schema_version,
        counts,
    })
}

/// Copies every row of `from` into the empty `to`. `progress` is called
/// with the rows written so far and the total.
pub fn copy(
    from: &mut Store,
    to: &mut Store,
    mut progress: impl FnMut(u64, u64),
) -> Result<RowCounts> {
    to.write(|dst| {
        let have = dst.row_counts()?;
        if have != RowCounts::default() {
            return Err(Error::Data(tf(
                M::CopyNotEmpty,
                &[
                    ("accounts", &have.accounts),
                    ("codes", &have.codes),
                    ("mail", &have.mail),
                    ("audit", &have.audit),
                ],
            )));
        }
        // One snapshot of the source: its counts and its rows agree.
        let expected = from.read(|src| {
            let expected = src.row_counts()?;
            let total = (expected.accounts + expected.mail + expected.audit) as u64;
            let mut done = 0u64;
            src.dump(&mut |r: Record| {
                dst.load(&r)?;
                done += 1;
                if done.is_multiple_of(1000) {
                    progress(done, total);
                }
                Ok(())
            })?;
            progress(total, total);
            Ok(expected)
        })?;
        dst.finish_load()?;
        let got = dst.row_counts()?;
        if got != expected {
            return Err(Error::Data(tf(
                M::CopyMismatch,
                &[
                    ("expected", &format!("{expected:?}")),
                    ("got", &format!("{got:?}")),
                ],
            )));
        }
        Ok(got)
    })
}
