//! `recupera audit`: the audit log, newest first.

use super::require_account;
use crate::app::App;
use crate::cli::AuditArgs;
use crate::clock::{colombia, rfc3339};
use crate::error::Result;
use crate::i18n::{M, t};
use crate::table::Listing;
use crate::ui::Ui;
use serde_json::json;

pub fn run(app: &mut App, ui: &Ui, a: &AuditArgs) -> Result<()> {
    let account_id = match &a.user {
        Some(raw) => Some(app.store.read(|tx| require_account(tx, a.kind, raw))?.id),
        None => None,
    };
    let headers = [
        t(M::ColWhen),
        t(M::ColAgent),
        t(M::ColAccount),
        t(M::ColEvent),
        t(M::ColOutcome),
        t(M::ColDetail),
    ];
    let mut list = Listing::new(ui, &headers)?;
    app.store.read(|tx| {
        tx.for_each_audit(account_id, a.limit, |r| {
            list.push(
                || {
                    json!({
                        "id": r.id,
                        "at": rfc3339(r.at),
                        "agent": r.agent,
                        "account_id": r.account_id,
                        "subject": r.subject,
                        "event": r.event,
                        "outcome": r.outcome,
                        "detail": r.detail,
                    })
                },
                || {
                    vec![
                        colombia(r.at),
                        r.agent.clone(),
                        r.subject.clone().unwrap_or_default(),
                        r.event.clone(),
                        r.outcome.clone(),
                        r.detail.clone().unwrap_or_default(),
                    ]
                },
            )
        })
    })?;
    list.finish()
}
