//! `recupera codes purge | list`.

use crate::app::App;
use crate::cli::CodesCommand;
use crate::clock::{colombia, rfc3339};
use crate::error::Result;
use crate::i18n::{M, code_state_label, t, tf, type_label};
use crate::ops::codes::purge;
use crate::table::Listing;
use crate::ui::Ui;
use serde_json::json;

pub fn run(app: &mut App, ui: &Ui, cmd: &CodesCommand) -> Result<()> {
    match cmd {
        CodesCommand::Purge(a) => run_purge(app, ui, a.dry_run),
        CodesCommand::List => run_list(app, ui),
    }
}

fn run_purge(app: &mut App, ui: &Ui, dry_run: bool) -> Result<()> {
    let c = purge(app, dry_run)?;
    let text = tf(
        if dry_run { M::PurgeDry } else { M::PurgeDone },
        &[("codes", &c.codes)],
    );
    ui.result(
        json!({
            "status": "ok",
            "dry_run": dry_run,
            "codes": c.codes,
            "mails": c.mails,
        }),
        &text,
    )
}

fn run_list(app: &mut App, ui: &Ui) -> Result<()> {
    let now = app.now();
    let headers = [
        t(M::ColAccount),
        t(M::ColCodeCreated),
        t(M::ColExpires),
        t(M::ColAttempts),
        t(M::ColState),
    ];
    let mut list = Listing::new(ui, &headers)?;
    app.store.read(|tx| {
        tx.for_each_code(&mut |r| {
            let c = &r.code;
            let state = c.state.shown(c.expires_at, now);
            list.push(
                || {
                    json!({
                        "id": c.id,
                        "account_id": c.account_id,
                        "type": r.kind,
                        "nit": r.nit.as_str(),
                        "created_at": rfc3339(c.created_at),
                        "expires_at": rfc3339(c.expires_at),
                        "attempts": c.attempts,
                        "state": state.as_str(),
                    })
                },
                || {
                    vec![
                        format!("{} {}", type_label(r.kind), r.nit.display()),
                        colombia(c.created_at),
                        colombia(c.expires_at),
                        c.attempts.to_string(),
                        code_state_label(state).to_string(),
                    ]
                },
                false,
            )
        })?;
        Ok(())
    })?;
    list.finish()
}
