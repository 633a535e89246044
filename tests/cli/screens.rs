//! The confirm screen stays open (the manual's screens 03 and 05), and the
//! terminal is always given back: in a real pseudo-terminal, on both
//! engines.

use crate::engines;
use crate::pty::{Pty, exited, finish, send, send_secret, spawn};
use crate::util::*;
use expectrl::{ControlCode, Expect};

engines!(
    a_misread_code_is_typed_again_and_the_rest_is_kept,
    volver_a_enviar_el_codigo_from_the_request_session,
    volver_a_enviar_el_codigo_from_reset_confirm_asks_the_email,
    five_wrong_codes_in_one_session_kill_the_code_uniformly,
    a_shared_nit_is_typed_again_with_its_type,
    an_identifier_typed_again_that_the_password_holds_asks_another_password,
    ctrl_c_after_the_password_changed_is_not_a_cancellation,
);

const DOWN: &str = "\x1b[B";
const REFUSED: &str = "No se pudo actualizar la contraseña";

fn echo_is_on(p: &Pty) -> bool {
    use expectrl::process::Termios;
    p.get_process().is_echo().unwrap()
}

/// A code the customer did not get (never the right one).
fn wrong(code: &str) -> &'static str {
    if code == "zzzzz" { "yyyyy" } else { "zzzzz" }
}

/// `reset confirm` in a terminal up to the first code answer.
fn confirm_session(env: &Env, code: &str) -> Pty {
    let mut p = spawn(
        env,
        &["reset", "confirm", "--user", NIT, "--no-login"],
        false,
    );
    p.expect("Código").unwrap();
    send(&mut p, &format!("{code}\r"));
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p
}

fn a_misread_code_is_typed_again_and_the_rest_is_kept(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let mut p = confirm_session(env, wrong(&code));
    p.expect(REFUSED).unwrap();
    p.expect("¿Qué desea hacer?").unwrap();
    p.expect("Escribir el código otra vez").unwrap();
    p.expect("Volver a enviar el código").unwrap();
    p.expect("Salir").unwrap();
    send(&mut p, "\r");
    // Only the code is asked again: not the NIT, not the password.
    p.expect("Código").unwrap();
    send(&mut p, &format!("{code}\r"));
    p.expect("Su contraseña ha sido actualizada.").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    env.login("cliente", NIT, STRONG).ok();
    // The misread attempt counted like any other.
    let c = &env.codes()[0];
    assert_eq!(
        (c["state"].as_str(), c["attempts"].as_i64()),
        (Some("used"), Some(2))
    );
}

fn volver_a_enviar_el_codigo_from_the_request_session(env: &mut Env) {
    env.add_cliente();
    let mut p = spawn(
        env,
        &["reset", "request", "--nit", NIT, "--email", EMAIL],
        false,
    );
    p.expect("¿Continuar ahora con el código?").unwrap();
    send(&mut p, "\r");
    let first = env.last_code();
    p.expect("Código").unwrap();
    send(&mut p, &format!("{}\r", wrong(&first)));
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect(REFUSED).unwrap();
    p.expect("¿Qué desea hacer?").unwrap();
    send(&mut p, DOWN);
    send(&mut p, "\r");
    // Nothing is asked: the session remembers the form of step 02. The
    // answer is the manual's, as always; within the minute the request
    // limit holds (this process's clock stands still), so no new code is
    // sent and the first one stays alive; the screen says what a resend
    // does without saying which happened.
    p.expect("Se envió un código de confirmación al email asignado a su cuenta [a****@example.co]")
        .unwrap();
    p.expect("Se envía como mucho un código por minuto y 5 al día; si no llega uno nuevo, sirve el último que llegó.")
        .unwrap();
    p.expect("Código").unwrap();
    assert_eq!(
        env.mails().len(),
        1,
        "one request a minute, in the loop too"
    );
    send(&mut p, &format!("{first}\r"));
    p.expect("Su contraseña ha sido actualizada.").unwrap();
    p.expect("¿Iniciar sesión ahora?").unwrap();
    send(&mut p, DOWN);
    send(&mut p, "\r");
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    let details = env.audit_details("reset.request");
    assert_eq!(details, ["throttled", "issued"]);
}

fn volver_a_enviar_el_codigo_from_reset_confirm_asks_the_email(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let first = env.last_code();
    env.advance(61);
    let mut p = confirm_session(env, wrong(&first));
    p.expect("¿Qué desea hacer?").unwrap();
    send(&mut p, DOWN);
    send(&mut p, "\r");
    // The NIT alone does not say the type: asked as the form asks it;
    // then the email, never shown by recupera.
    p.expect("Tipo").unwrap();
    send(&mut p, "\r");
    p.expect("Email").unwrap();
    send(&mut p, &format!("{EMAIL}\r"));
    p.expect("Se envió un código de confirmación al email asignado a su cuenta [a****@example.co]")
        .unwrap();
    p.expect("Código").unwrap();
    let second = env.last_code();
    send(&mut p, &format!("{second}\r"));
    p.expect("Su contraseña ha sido actualizada.").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    env.login("cliente", NIT, STRONG).ok();
}

fn five_wrong_codes_in_one_session_kill_the_code_uniformly(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let mut p = confirm_session(env, wrong(&code));
    for _ in 0..4 {
        p.expect(REFUSED).unwrap();
        p.expect("¿Qué desea hacer?").unwrap();
        send(&mut p, "\r");
        p.expect("Código").unwrap();
        send(&mut p, &format!("{}\r", wrong(&code)));
    }
    // Five refusals in the session: it stops offering the code again and
    // says why (its own count; the refusal itself is the same as ever).
    p.expect(REFUSED).unwrap();
    p.expect("Tras 5 intentos fallidos un código deja de servir")
        .unwrap();
    let menu = p.expect("Salir").unwrap();
    let menu = String::from_utf8_lossy(menu.before()).to_string();
    assert!(menu.contains("¿Qué desea hacer?"), "{menu}");
    assert!(!menu.contains("Escribir el código otra vez"), "{menu}");
    assert!(menu.contains("Volver a enviar el código"), "{menu}");
    send(&mut p, DOWN);
    send(&mut p, "\r");
    let status = finish(&mut p);
    assert!(
        exited(&status, 1),
        "Salir after a refusal is the refusal: {status}"
    );
    assert_eq!(env.codes_in("exhausted"), 1);
    // The code is dead: even the right one now gets the same refusal.
    env.confirm_refused(NIT, &code, STRONG);
    env.login_refused("cliente", NIT, STRONG);
}

/// A NIT that a cliente and a proveedor share, both with a live code,
/// names no one account: refused, and at a terminal the hint names no
/// flag; "Escribir otro NIT, usuario o email" asks the NIT and its type
/// (as the request's form does), and the same code and password go
/// through. The refusal counted nothing (no guess was checked).
fn a_shared_nit_is_typed_again_with_its_type(env: &mut Env) {
    const OTHER: &str = "compras@example.co";
    env.add_cliente();
    env.add_user("proveedor", NIT, OTHER, &[]).ok();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.request_as("proveedor", NIT, OTHER).ok();
    let mut p = confirm_session(env, &code);
    p.expect(REFUSED).unwrap();
    let menu = p.expect("Salir").unwrap();
    let menu = String::from_utf8_lossy(menu.before()).to_string();
    assert!(
        menu.contains("escríbalo otra vez con el tipo, o escriba el usuario"),
        "{menu}"
    );
    assert!(!menu.contains("--type"), "{menu}");
    assert!(
        menu.contains("Escribir otro NIT, usuario o email"),
        "{menu}"
    );
    send(&mut p, DOWN);
    send(&mut p, DOWN);
    send(&mut p, "\r");
    p.expect("NIT, Usuario o email").unwrap();
    send(&mut p, &format!("{NIT}\r"));
    p.expect("Tipo").unwrap();
    send(&mut p, "\r");
    // Neither the code nor the password is asked again.
    p.expect("Su contraseña ha sido actualizada.").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    env.login("cliente", NIT, STRONG).ok();
    let trail: Vec<String> = env
        .audit(&["--event", "reset.confirm"])
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["outcome"].as_str().unwrap_or(""),
                e["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    // Newest first.
    assert_eq!(trail, ["ok:password_changed", "refused:ambiguous"]);
    // The ambiguous try counted on no code: the cliente's was used at its
    // first counted try, the proveedor's is untouched.
    let mut codes: Vec<(String, i64)> = env
        .codes()
        .iter()
        .map(|c| {
            (
                c["state"].as_str().unwrap_or("").to_string(),
                c["attempts"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    codes.sort();
    assert_eq!(codes, [("pending".to_string(), 0), ("used".to_string(), 1)]);
}

/// The identifier typed again is checked against the password as the
/// first one was: a password that holds it is asked again, not sent.
fn an_identifier_typed_again_that_the_password_holds_asks_another_password(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let mut p = confirm_session(env, wrong(&code));
    p.expect(REFUSED).unwrap();
    p.expect("Salir").unwrap();
    send(&mut p, DOWN);
    send(&mut p, DOWN);
    send(&mut p, "\r");
    p.expect("NIT, Usuario o email").unwrap();
    // A username, so no type is asked; STRONG holds it.
    send(&mut p, "tornillo\r");
    p.expect("La contraseña no puede construirse con el NIT, usuario o email escrito.")
        .unwrap();
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG2}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG2}\r"));
    // No account has that username: the same refusal, and the menu.
    p.expect(REFUSED).unwrap();
    p.expect("Salir").unwrap();
    send(&mut p, DOWN);
    send(&mut p, DOWN);
    send(&mut p, DOWN);
    send(&mut p, "\r");
    let status = finish(&mut p);
    assert!(exited(&status, 1), "{status}");
    let trail = env.audit_details("reset.confirm");
    // Newest first: the password holding the identifier was never sent.
    assert_eq!(trail, ["no_match", "wrong_code"]);
}

fn ctrl_c_after_the_password_changed_is_not_a_cancellation(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let mut p = spawn(
        env,
        &["reset", "confirm", "--user", NIT, "--code", &code],
        false,
    );
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Su contraseña ha sido actualizada.").unwrap();
    p.expect("¿Iniciar sesión ahora?").unwrap();
    p.send(ControlCode::EndOfText).unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "the reset was done: {status}");
    env.login("cliente", NIT, STRONG).ok();
}

/// SIGTERM and SIGHUP at a hidden prompt give the terminal back as
/// Ctrl-C does: echo on again, and nothing written.
#[test]
fn termination_signals_restore_the_terminal() {
    let env = Env::sqlite();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let before = env.state();
    for (sig, code_expected) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let mut p = spawn(
            &env,
            &["reset", "confirm", "--user", NIT, "--code", &code],
            false,
        );
        p.expect("Nueva contraseña").unwrap();
        send_secret(&mut p, "a medio escribir");
        assert!(!echo_is_on(&p), "the prompt hides what is typed");
        // The recupera process is the session's child (sh exec'd it).
        let pid = p.get_process().pid().as_raw();
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(pid, sig);
        }
        let status = finish(&mut p);
        assert!(exited(&status, code_expected), "{sig}: {status}");
        assert!(echo_is_on(&p), "{sig}: echo is back on");
    }
    assert_eq!(env.state(), before, "nothing written");
}

/// `--password-stdin` with a terminal as stdin would echo the password:
/// refused with a hint, before anything is read.
#[test]
fn password_stdin_from_a_terminal_is_refused_with_a_hint() {
    let env = Env::sqlite();
    env.add_cliente_with_password();
    let mut p = spawn(&env, &["login", "--user", NIT, "--password-stdin"], false);
    p.expect("--password-stdin lee la contraseña de una tubería")
        .unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 2), "{status}");
}

/// A disabled account stands out in a terminal in colour, and not with
/// NO_COLOR (its capitals still say it).
#[test]
fn no_color_removes_colour_in_a_terminal() {
    let env = Env::sqlite();
    env.add_cliente();
    env.cli(["user", "disable", NIT]).ok();
    let mut coloured = spawn(&env, &["user", "list"], true);
    let out = coloured.expect(expectrl::Eof).unwrap();
    let text = String::from_utf8_lossy(out.as_bytes()).into_owned();
    assert!(text.contains("DESHABILI"), "{text}");
    assert!(text.contains("\x1b["), "colour in a terminal: {text:?}");
    let mut plain = spawn(&env, &["user", "list"], false);
    let out = plain.expect(expectrl::Eof).unwrap();
    let text = String::from_utf8_lossy(out.as_bytes()).into_owned();
    assert!(text.contains("DESHABILI"));
    assert!(!text.contains("\x1b["), "no colour with NO_COLOR: {text:?}");
}

/// `--no-continue` ends `reset request` after its answer, and `--no-login`
/// ends `reset confirm` after the reset, in a terminal where both would
/// otherwise ask (the manual's screens 03 and 06; the other tests here
/// show the questions without the flags).
#[test]
fn no_continue_and_no_login_end_the_session_without_asking() {
    let env = Env::sqlite();
    env.add_cliente();
    let mut p = spawn(
        &env,
        &[
            "reset",
            "request",
            "--nit",
            NIT,
            "--email",
            EMAIL,
            "--no-continue",
        ],
        false,
    );
    let out = p.expect(expectrl::Eof).unwrap();
    let text = String::from_utf8_lossy(out.as_bytes()).into_owned();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    assert!(
        text.contains("Se envió un código de confirmación"),
        "{text}"
    );
    assert!(!text.contains("¿Continuar ahora"), "{text}");
    assert!(!text.contains("Código"), "{text}");

    let code = env.last_code();
    let mut p = spawn(
        &env,
        &[
            "reset",
            "confirm",
            "--nit",
            NIT,
            "--code",
            &code,
            "--no-login",
        ],
        false,
    );
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    let out = p.expect(expectrl::Eof).unwrap();
    let text = String::from_utf8_lossy(out.as_bytes()).into_owned();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    assert!(
        text.contains("Su contraseña ha sido actualizada."),
        "{text}"
    );
    assert!(!text.contains("¿Iniciar sesión ahora?"), "{text}");
    env.login("cliente", NIT, STRONG).ok();
    let logins = env.audit(&["--event", "login"]);
    assert_eq!(logins.len(), 1, "only the one above: {logins:?}");
}
