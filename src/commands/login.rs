//! `recupera login` (manual step 07: USUARIO + CONTRASEÑA, "ACCEDER").

use crate::app::App;
use crate::cli::LoginArgs;
use crate::error::Result;
use crate::i18n::{M, t};
use crate::input::{self, PasswordSource};
use crate::ops::login::login;
use crate::ui::Ui;

pub fn run(app: &mut App, ui: &Ui, a: &LoginArgs) -> Result<()> {
    // "Iniciar sesión" or "Iniciar sesión como Proveedor".
    let kind = ui.account_type(a.kind, a.user.is_none())?;
    let ident = ui.value_or_prompt(a.user.as_deref(), "--user", t(M::PromptUser), |s| {
        input::ident(s, Some(kind))
    })?;
    let password = match input::password_source(ui, a.password_stdin)? {
        PasswordSource::Stdin => input::password_from_stdin()?,
        PasswordSource::Prompt => ui.password_prompt(t(M::PromptPassword), None, |_| Ok(()))?,
    };
    let outcome = login(app, kind, &ident, &password)?;
    crate::view::login_outcome(ui, outcome, &ident)
}
