//! `recupera reset request | confirm` (manual steps 01–06).
//!
//! In a terminal the session follows the manual's screens: after "Enviar
//! código" it offers to go straight on to the code ("no cierres esta
//! pantalla"); a refused code keeps the screen open with "Escribir el código
//! otra vez", "Volver a enviar el código" and "Salir", the identifier and
//! the new password kept in memory (zeroed on drop); after the update it
//! offers to log in. Without a terminal: one attempt per process, flags
//! and stdin only, and the exit code says what happened.

use crate::app::App;
use crate::cli::{ConfirmArgs, RequestArgs, ResetCommand};
use crate::domain::account::{AccountType, Ident};
use crate::domain::code;
use crate::domain::email::Email;
use crate::domain::password::Password;
use crate::error::{Error, Result, policy_message};
use crate::i18n::{M, t, tf};
use crate::input::{self, PasswordSource};
use crate::ops::reset::{ConfirmOutcome, confirm, request};
use crate::ui::Ui;
use serde_json::json;
use zeroize::Zeroizing;

pub fn run(app: &mut App, ui: &Ui, cmd: &ResetCommand) -> Result<()> {
    match cmd {
        ResetCommand::Request(a) => run_request(app, ui, a),
        ResetCommand::Confirm(a) => run_confirm(app, ui, a, None),
    }
}

/// The answer of step 03, the same whatever happened.
fn request_answer(app: &App, ui: &Ui, masked: &str) -> Result<()> {
    let sent = tf(M::ReqSent, &[("email", &format!("[{masked}]"))]);
    let keep = tf(M::ReqKeepOpen, &[("hours", &app.ttl_hours())]);
    ui.result(
        json!({
            "status": "sent",
            "email_masked": masked,
            "expires_in_hours": app.ttl_hours(),
        }),
        &format!("{sent}\n{keep}"),
    )
}

/// What a terminal session remembers to resend a code: the form of step 02.
struct RequestForm {
    kind: AccountType,
    ident: Ident,
    email: Email,
}

fn run_request(app: &mut App, ui: &Ui, a: &RequestArgs) -> Result<()> {
    // In a terminal with nothing given, ask for the type as the form does.
    let kind = ui.account_type(a.kind, a.user.is_none() && a.email.is_none())?;
    let prompt = match kind {
        AccountType::Cliente => t(M::PromptNit),
        AccountType::Proveedor => t(M::PromptNitOrUser),
    };
    let (ident, raw) = ui.value_or_prompt(a.user.as_deref(), "--user", prompt, |s| {
        input::ident(s, Some(kind)).map(|i| (i, s.to_string()))
    })?;
    let email = input::email_or_prompt(ui, a.email.as_deref())?;
    let outcome = request(app, kind, &ident, &email)?;
    request_answer(app, ui, &outcome.masked_email)?;
    // "No cierres esta pantalla": in a terminal, go straight on to step 05.
    let go_on = ui.interactive && !ui.json && !a.no_continue;
    if go_on {
        crate::ui::next_step();
    }
    if go_on && ui.confirm(t(M::PromptContinue), true)? {
        let next = ConfirmArgs {
            user: Some(raw),
            code: None,
            kind: Some(kind),
            password_stdin: false,
            no_login: false,
        };
        let form = RequestForm { kind, ident, email };
        return run_confirm(app, ui, &next, Some(form));
    }
    Ok(())
}

/// What to do after a refused code, in a terminal.
enum Next {
    Retype,
    Resend,
    /// Another NIT, username or email (the form's other field): a
    /// mistyped NIT, or one that several accounts share.
    RetypeIdent,
    Quit,
}

/// `spent`: this session has had as many refusals since its last code
/// was sent as a code survives, so typing it again cannot help. Counted
/// by the session itself (every refusal looks the same), it tells the
/// agent nothing about the account that the limits table does not.
fn after_refusal(ui: &Ui, spent: Option<i64>) -> Result<Next> {
    if let Some(n) = spent {
        ui.warn_line(&tf(M::HintCodeSpent, &[("n", &n)]));
        let items = [t(M::OptResend), t(M::OptQuit)];
        return Ok(match ui.select(t(M::PromptAfterRefusal), &items, 0)? {
            0 => Next::Resend,
            _ => Next::Quit,
        });
    }
    let items = [
        t(M::OptRetype),
        t(M::OptResend),
        t(M::OptRetypeIdent),
        t(M::OptQuit),
    ];
    Ok(match ui.select(t(M::PromptAfterRefusal), &items, 0)? {
        0 => Next::Retype,
        1 => Next::Resend,
        2 => Next::RetypeIdent,
        _ => Next::Quit,
    })
}

fn ask_code(ui: &Ui, given: Option<&str>) -> Result<Zeroizing<String>> {
    ui.value_or_prompt(given, "--code", t(M::PromptCode), |s| {
        let s = s.trim();
        code::check_form(s)?;
        Ok(Zeroizing::new(s.to_string()))
    })
}

fn run_confirm(
    app: &mut App,
    ui: &Ui,
    a: &ConfirmArgs,
    mut form: Option<RequestForm>,
) -> Result<()> {
    // Decide every source before reading stdin.
    if !ui.interactive {
        if a.user.is_none() {
            return Err(Error::missing_flag("--user"));
        }
        if a.code.is_none() {
            return Err(Error::missing_flag("--code"));
        }
    }
    let source = input::password_source(ui, a.password_stdin)?;
    let mut code = ask_code(ui, a.code.as_deref())?;
    let ask_ident = || {
        ui.value_or_prompt(None, "--user", t(M::PromptIdentConfirm), |s| {
            input::ident(s, a.kind).map(|i| (i, s.to_string()))
        })
    };
    let (mut ident, mut raw) = match &a.user {
        Some(u) => (input::ident(u, a.kind)?, u.clone()),
        None => ask_ident()?,
    };
    let mut kind = a.kind;
    let policy = app.policy;
    let prompt_password = |raw: &str| -> Result<Password> {
        let raw_pw = ui.password_prompt(
            t(M::PromptNewPassword),
            Some(t(M::PromptConfirmPassword)),
            |s| {
                Password::new(s)
                    .and_then(|pw| policy.check_typed(&pw, Some(raw)).map(|_| ()))
                    .map_err(|e| policy_message(&e))
            },
        )?;
        Ok(Password::new(&raw_pw)?)
    };
    let mut password = match source {
        PasswordSource::Stdin => input::new_password_from_stdin()?,
        PasswordSource::Prompt => prompt_password(&raw)?,
    };
    // The screen stays open only in a terminal session (not for scripts).
    let keep_open = ui.interactive && !ui.json;
    // Refusals since this session last sent a code (or began).
    let mut refusals = 0i64;
    loop {
        match confirm(app, kind, &ident, &raw, &code, &password)? {
            ConfirmOutcome::Updated(acc) => {
                ui.result(
                    json!({"status": "updated", "account": crate::view::account_ref(&acc)}),
                    t(M::ConfirmOk),
                )?;
                // Step 06: "Iniciar sesión". No automatic login: offer it.
                // The password is already changed: a Ctrl-C from here on
                // ends with exit 0 (see main's signal handling).
                crate::ui::mark_committed();
                if ui.interactive
                    && !ui.json
                    && !a.no_login
                    && ui.confirm(t(M::PromptLoginNow), true)?
                {
                    let ident = Ident::Nit(acc.nit.clone());
                    let pw = ui.password_prompt(t(M::PromptPassword), None, |_| Ok(()))?;
                    let outcome = crate::ops::login::login(app, acc.kind, &ident, &pw)?;
                    return crate::view::login_outcome(ui, outcome, &ident);
                }
                return Ok(());
            }
            // The code was right and is still usable: at a terminal, the
            // agent is told why and asked for another password.
            ConfirmOutcome::Policy(e) => {
                if !(keep_open && matches!(source, PasswordSource::Prompt)) {
                    return Err(Error::Data(policy_message(&e)));
                }
                ui.warn_line(&policy_message(&e));
                password = prompt_password(&raw)?;
            }
            ConfirmOutcome::Refused => {
                // The hint names a flag only where the session ends.
                let refusal = |here| crate::view::confirm_refused(&ident, kind, here);
                if !keep_open {
                    return Err(refusal(false));
                }
                ui.warn_line(&refusal(true).to_string());
                refusals += 1;
                let attempts = app.limits.code_attempts;
                let spent = (refusals >= attempts).then_some(attempts);
                match after_refusal(ui, spent)? {
                    Next::Retype => code = ask_code(ui, None)?,
                    Next::Resend => {
                        let f = match form.take() {
                            Some(f) => f,
                            None => resend_form(ui, kind, &ident)?,
                        };
                        let outcome = request(app, f.kind, &f.ident, &f.email)?;
                        request_answer(app, ui, &outcome.masked_email)?;
                        ui.warn_line(t(M::HintResend));
                        crate::ui::next_step();
                        form = Some(f);
                        refusals = 0;
                        code = ask_code(ui, None)?;
                    }
                    Next::RetypeIdent => {
                        (ident, raw) = ask_ident()?;
                        // A NIT names one account only with its type:
                        // asked as the request's form asks it, unless
                        // --type was given.
                        kind = match (&ident, a.kind) {
                            (Ident::Nit(_), None) => Some(ui.account_type(None, true)?),
                            _ => a.kind,
                        };
                        // The form kept for "Volver a enviar el código"
                        // was for the identifier before.
                        form = None;
                        // The password may hold the new identifier (the
                        // typed check): asked for another, as after the
                        // account's refusal.
                        if let Err(e) = policy.check_typed(&password, Some(&raw)) {
                            if !matches!(source, PasswordSource::Prompt) {
                                return Err(e.into());
                            }
                            ui.warn_line(&policy_message(&e));
                            password = prompt_password(&raw)?;
                        }
                    }
                    Next::Quit => return Err(refusal(false)),
                }
            }
        }
    }
}

/// "Volver a enviar el código" from a session that did not start with the
/// request: the form's type (when the identifier does not settle it) and
/// the registered email, asked as the request asks for them. The email is
/// never shown, and mail goes only to the stored address.
fn resend_form(ui: &Ui, kind: Option<AccountType>, ident: &Ident) -> Result<RequestForm> {
    let kind = match (kind, ident) {
        (Some(k), _) => k,
        (None, Ident::Nit(_)) => ui.account_type(None, true)?,
        (None, _) => AccountType::Proveedor,
    };
    let email = input::email_or_prompt(ui, None)?;
    Ok(RequestForm {
        kind,
        ident: ident.clone(),
        email,
    })
}
