//! `recupera db status | copy`.

use crate::app::App;
use crate::cli::{DbCommand, DbCopyArgs};
use crate::error::Result;
use crate::i18n::{M, tf};
use crate::ops::db;
use crate::store::{Location, Store};
use crate::ui::Ui;
use serde_json::json;

pub fn run(
    app: &mut App,
    ui: &Ui,
    cmd: &DbCommand,
    ca_file: Option<&std::path::Path>,
) -> Result<()> {
    match cmd {
        DbCommand::Status => run_status(app, ui),
        DbCommand::Copy(a) => run_copy(app, ui, a, ca_file),
    }
}

fn run_status(app: &mut App, ui: &Ui) -> Result<()> {
    let now = app.now();
    let s = db::status(&mut app.store, now)?;
    ui.result(
        json!({
            "engine": s.engine.as_str(),
            "schema_version": s.schema_version,
            "accounts": s.counts.accounts,
            "codes_pending": s.counts.codes_pending,
            "mail_queued": s.counts.mail_queued,
            "audit": s.counts.audit,
        }),
        &tf(
            M::DbStatus,
            &[
                ("engine", &s.engine.as_str()),
                ("where", &crate::i18n::visible(&app.location.shown())),
                ("version", &s.schema_version),
                ("accounts", &s.counts.accounts),
                ("codes", &s.counts.codes_pending),
                ("mail", &s.counts.mail_queued),
                ("audit", &s.counts.audit),
            ],
        ),
    )
}

fn run_copy(
    app: &mut App,
    ui: &Ui,
    a: &DbCopyArgs,
    ca_file: Option<&std::path::Path>,
) -> Result<()> {
    // The target is typed on the command line: a password in it is refused.
    let to = Location::parse(&a.to, true, ca_file)?;
    let mut target = Store::open(&to, app.busy_timeout)?;
    let bar = crate::ui::progress(ui, crate::i18n::t(M::ProgressCopy));
    let rows = db::copy(&mut app.store, &mut target, |done, total| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let from = app.store.engine().as_str();
    let to_engine = target.engine().as_str();
    ui.result(
        json!({
            "status": "copied",
            "from": from,
            "to": to_engine,
            "rows": rows,
        }),
        &tf(
            M::DbCopied,
            &[
                ("from", &from),
                ("to", &to_engine),
                ("target", &crate::i18n::visible(&to.shown())),
                ("accounts", &rows.accounts),
                ("codes", &rows.codes),
                ("mail", &rows.mail),
                ("audit", &rows.audit),
            ],
        ),
    )
}
