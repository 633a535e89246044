//! `recupera user add | list | show | unlock | disable | enable | edit | delete`.

use crate::app::App;
use crate::cli::{
    UserAddArgs, UserCommand, UserDeleteArgs, UserDisableArgs, UserEditArgs, UserIdentArgs,
    UserListArgs,
};
use crate::domain::account::{Account, AccountType, Ident};
use crate::domain::lang::Lang;
use crate::domain::password::{Password, confirm};
use crate::error::{Error, Result, policy_message};
use crate::i18n::{M, t, tf, type_label, visible};
use crate::input::{self, PasswordSource};
use crate::ops::accounts::{self, Edit, NewUser};
use crate::ops::require_account;
use crate::table::{self, Listing};
use crate::ui::Ui;
use crate::view::{account_json, list_headers, list_row, show_rows};
use serde_json::json;

pub fn run(app: &mut App, ui: &Ui, cmd: &UserCommand, lang_on_argv: Option<Lang>) -> Result<()> {
    match cmd {
        UserCommand::Add(a) => run_add(app, ui, a, lang_on_argv),
        UserCommand::List(a) => run_list(app, ui, a),
        UserCommand::Show(a) => run_show(app, ui, a),
        UserCommand::Unlock(a) => run_unlock(app, ui, a),
        UserCommand::Disable(a) => run_disable(app, ui, a),
        UserCommand::Enable(a) => run_enable(app, ui, a),
        UserCommand::Edit(a) => run_edit(app, ui, a),
        UserCommand::Delete(a) => run_delete(app, ui, a),
        UserCommand::Import(a) => super::import::run_import(app, ui, a),
        UserCommand::Export(a) => super::import::run_export(app, ui, a),
    }
}

/// The account an agent command is about: IDENT as given, or asked for in
/// a terminal (a usage error naming IDENT without one).
fn who(ui: &Ui, a: &UserIdentArgs) -> Result<(Ident, String)> {
    ui.value_or_prompt(a.ident.as_deref(), "IDENT", t(M::PromptIdentAgent), |s| {
        input::ident(s, a.kind).map(|i| (i, s.trim().to_string()))
    })
}

/// An optional value asked at the terminal: empty is none, and a value
/// the check refuses is explained and asked again, not the end of the
/// session.
fn optional_until_valid<T>(
    ui: &Ui,
    prompt: &str,
    check: impl Fn(&str) -> Result<T>,
) -> Result<Option<T>> {
    loop {
        let Some(raw) = ui.optional_prompt(prompt)? else {
            return Ok(None);
        };
        match check(&raw) {
            Ok(v) => return Ok(Some(v)),
            Err(e) => ui.warn_line(&e.to_string()),
        }
    }
}

fn run_add(app: &mut App, ui: &Ui, a: &UserAddArgs, lang_on_argv: Option<Lang>) -> Result<()> {
    if a.password_stdin && a.no_password {
        return Err(Error::Usage(t(M::PasswordConflict).to_string()));
    }
    let kind = ui.account_type(a.kind, a.nit.is_none())?;
    let nit = ui.value_or_prompt(a.nit.as_deref(), "--nit", t(M::PromptNit), input::nit)?;
    let email = input::email_or_prompt(ui, a.email.as_deref())?;
    // Decide where the password comes from before reading anything.
    let ask_source = !a.no_password && !a.password_stdin && ui.interactive;
    let source = if a.no_password {
        None
    } else if a.password_stdin {
        Some(PasswordSource::Stdin)
    } else if ui.interactive {
        Some(PasswordSource::Prompt)
    } else {
        return Err(Error::Usage(t(M::MissingPasswordSource).to_string()));
    };
    let username = match &a.username {
        Some(u) => Some(input::username(u)?),
        None if ui.interactive && kind == AccountType::Proveedor => {
            optional_until_valid(ui, t(M::PromptUsername), input::username)?
        }
        None => None,
    };
    let name = match &a.name {
        Some(n) => Some(input::name(n)?).filter(|n| !n.is_empty()),
        None if ui.interactive => {
            optional_until_valid(ui, t(M::PromptName), input::name)?.filter(|n| !n.is_empty())
        }
        None => None,
    };
    // At a terminal with neither flag: who sets the password. SPEC's way
    // first, the customer with a code, so the agent never learns it.
    let source = if ask_source {
        let items = [t(M::OptCustomerSetsPassword), t(M::OptTypePasswordNow)];
        match ui.select(t(M::PromptWhoSetsPassword), &items, 0)? {
            0 => None,
            _ => source,
        }
    } else {
        source
    };
    let u = NewUser {
        kind,
        nit,
        email,
        username,
        name,
        lang: a.mail_lang.or(lang_on_argv).unwrap_or(Lang::Es),
    };
    let password = match source {
        None => None,
        Some(PasswordSource::Stdin) => Some(input::new_password_from_stdin()?),
        Some(PasswordSource::Prompt) => {
            let raw = {
                let app_ref = &*app;
                ui.password_prompt(
                    t(M::PromptNewPassword),
                    Some(t(M::PromptConfirmPassword)),
                    |s| {
                        Password::new(s)
                            .map_err(|e| policy_message(&e))
                            .and_then(|pw| {
                                accounts::check_new_password(app_ref, &pw, &u)
                                    .map_err(|e| e.to_string())
                            })
                    },
                )?
            };
            let pw = Password::new(&raw)?;
            confirm(&pw, &raw)?;
            Some(pw)
        }
    };
    let acc = accounts::add(app, &u, password.as_ref())?;
    let text = tf(
        M::UserAdded,
        &[
            ("type", &type_label(acc.kind)),
            ("nit", &acc.nit.display()),
            ("email", &visible(acc.email.as_str())),
        ],
    );
    let text = if password.is_none() {
        format!("{text}\n{}", t(M::UserAddedNoPassword))
    } else {
        text
    };
    ui.result(
        json!({"status": "created", "account": account_json(&acc, app.now(), &app.limits)}),
        &text,
    )
}

fn run_list(app: &mut App, ui: &Ui, a: &UserListArgs) -> Result<()> {
    let now = app.now();
    let limits = app.limits;
    let mut list = Listing::new(ui, &list_headers())?;
    app.store.read(|tx| {
        tx.for_each_account(a.kind, &mut |acc| {
            list.push(
                || account_json(&acc, now, &limits),
                || list_row(&acc, now),
                acc.is_disabled(),
            )
        })?;
        Ok(())
    })?;
    list.finish()
}

fn run_show(app: &mut App, ui: &Ui, a: &UserIdentArgs) -> Result<()> {
    let (ident, raw) = who(ui, a)?;
    let now = app.now();
    let (acc, pending) = app.store.read(|tx| {
        let acc = require_account(tx, a.kind, &ident, &raw)?;
        let pending = i64::from(tx.live_code(acc.id, now)?.is_some());
        Ok((acc, pending))
    })?;
    if ui.json {
        let mut v = account_json(&acc, now, &app.limits);
        v["pending_codes"] = json!(pending);
        return ui.doc(&v);
    }
    table::key_values(
        ui,
        &show_rows(&acc, now, &app.limits, pending),
        acc.is_disabled(),
    )
}

fn result_for(app: &App, ui: &Ui, status: &str, acc: &Account, msg: M) -> Result<()> {
    ui.result(
        json!({"status": status, "account": account_json(acc, app.now(), &app.limits)}),
        &tf(
            msg,
            &[("type", &type_label(acc.kind)), ("nit", &acc.nit.display())],
        ),
    )
}

fn run_unlock(app: &mut App, ui: &Ui, a: &UserIdentArgs) -> Result<()> {
    let (ident, raw) = who(ui, a)?;
    let acc = accounts::unlock(app, a.kind, &ident, &raw)?;
    // Unlocking clears the counters; a disabled account stays disabled,
    // and the message must not say it can log in.
    let msg = if acc.is_disabled() {
        M::UserUnlockedDisabled
    } else {
        M::UserUnlocked
    };
    result_for(app, ui, "unlocked", &acc, msg)
}

fn run_disable(app: &mut App, ui: &Ui, a: &UserDisableArgs) -> Result<()> {
    let (ident, raw) = who(ui, &a.who)?;
    let reason = a.reason.as_deref().map(input::reason).transpose()?;
    let reason = reason.filter(|r| !r.is_empty());
    let (acc, _) = accounts::set_disabled(app, a.who.kind, &ident, &raw, Some(reason.as_deref()))?;
    result_for(app, ui, "disabled", &acc, M::UserDisabled)
}

fn run_enable(app: &mut App, ui: &Ui, a: &UserIdentArgs) -> Result<()> {
    let (ident, raw) = who(ui, a)?;
    let (acc, _) = accounts::set_disabled(app, a.kind, &ident, &raw, None)?;
    result_for(app, ui, "enabled", &acc, M::UserEnabled)
}

fn run_edit(app: &mut App, ui: &Ui, a: &UserEditArgs) -> Result<()> {
    if a.email.is_none() && a.name.is_none() && a.username.is_none() && a.mail_lang.is_none() {
        return Err(Error::Usage(t(M::EditNothing).to_string()));
    }
    let (ident, raw) = who(ui, &a.who)?;
    let e = Edit {
        email: a.email.as_deref().map(input::email).transpose()?,
        name: a
            .name
            .as_deref()
            .map(|n| input::name(n).map(|n| Some(n).filter(|n| !n.is_empty())))
            .transpose()?,
        username: a
            .username
            .as_deref()
            .map(|u| {
                if u.trim().is_empty() {
                    Ok(None)
                } else {
                    input::username(u).map(Some)
                }
            })
            .transpose()?,
        lang: a.mail_lang,
    };
    let out = accounts::edit(app, a.who.kind, &ident, &raw, &e)?;
    let changes: Vec<serde_json::Value> = out
        .changes
        .iter()
        .map(|(f, b, a)| json!({"field": f, "before": b, "after": a}))
        .collect();
    let text = if out.changes.is_empty() {
        t(M::EditNoChange).to_string()
    } else {
        // The fields by the names `user show` gives them.
        let fields: Vec<&str> = out
            .changes
            .iter()
            .map(|(f, _, _)| match *f {
                "email" => t(M::ColEmail),
                "username" => t(M::ColUsername),
                "name" => t(M::ColName),
                "lang" => t(M::ColMailLang),
                other => other,
            })
            .collect();
        let mut s = tf(
            M::UserEdited,
            &[
                ("type", &type_label(out.account.kind)),
                ("nit", &out.account.nit.display()),
                ("fields", &fields.join(", ")),
            ],
        );
        if out.changes.iter().any(|(f, _, _)| *f == "email") {
            s.push('\n');
            s.push_str(t(M::UserEditedEmail));
        }
        s
    };
    ui.result(
        json!({
            "status": if out.changes.is_empty() { "unchanged" } else { "updated" },
            "changes": changes,
            "codes_killed": out.killed,
            "account": account_json(&out.account, app.now(), &app.limits),
        }),
        &text,
    )
}

fn run_delete(app: &mut App, ui: &Ui, a: &UserDeleteArgs) -> Result<()> {
    // Decided before anything is read: without a terminal, --yes or exit 2.
    if !a.yes && !ui.interactive {
        return Err(Error::Usage(t(M::DeleteNeedsYes).to_string()));
    }
    let (ident, raw) = who(ui, &a.who)?;
    let acc = app
        .store
        .read(|tx| require_account(tx, a.who.kind, &ident, &raw))?;
    if !a.yes {
        // Show the account, then ask (default: no).
        table::key_values(
            ui,
            &show_rows(&acc, app.now(), &app.limits, 0),
            acc.is_disabled(),
        )?;
        let q = tf(
            M::PromptDelete,
            &[("type", &type_label(acc.kind)), ("nit", &acc.nit.display())],
        );
        if !ui.confirm(&q, false)? {
            return Err(Error::interrupted());
        }
    }
    let out = accounts::delete(app, &acc)?;
    if !out.scrubbed {
        crate::ui::warn(t(M::DeleteNotScrubbed));
    }
    let mut text = tf(
        M::UserDeleted,
        &[
            ("type", &type_label(acc.kind)),
            ("nit", &acc.nit.display()),
            ("pseudonym", &out.pseudonym),
        ],
    );
    if let (Some(sweep), crate::mail::Transport::Outbox(dir)) = (out.outbox, &app.mailer.transport)
    {
        let dir = crate::i18n::shown_path(dir);
        if sweep.failed > 0 {
            crate::ui::warn(&tf(
                M::OutboxSweepFailed,
                &[("n", &sweep.failed), ("dir", &dir)],
            ));
        }
        if sweep.removed > 0 {
            text.push('\n');
            text.push_str(&tf(M::OutboxSwept, &[("n", &sweep.removed), ("dir", &dir)]));
        }
    }
    ui.result(
        json!({
            "status": "deleted",
            "pseudonym": out.pseudonym,
            "audit_rows": out.audit_rows,
            "files_scrubbed": out.scrubbed,
            "outbox_removed": out.outbox.map(|s| s.removed),
            "outbox_failed": out.outbox.map(|s| s.failed),
        }),
        &text,
    )
}
