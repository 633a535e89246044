//! The interactive screens, driven through a real pseudo-terminal (expectrl):
//! what a support agent sees with a customer on the phone. Every screen
//! writes (or must not write) state, so each runs on both engines.

use crate::engines;
use crate::util::*;
use expectrl::{ControlCode, Expect, Session};
use serde_json::Value;
use std::time::{Duration, Instant};

engines!(
    the_manuals_screens_from_request_to_login_in_spanish,
    the_screens_in_english_with_colour,
    ctrl_c_at_a_prompt_leaves_nothing_half_done,
    user_add_and_login_prompt_for_what_is_missing,
    ctrl_z_at_a_hidden_prompt_neither_stops_nor_shows_it,
    a_session_that_goes_on_after_the_code_was_sent_is_still_cancelled,
    tables_at_a_dumb_or_widthless_terminal,
);

/// How long a screen may take to appear, or the program to end: only a
/// hang reaches it (the machine may be busy; the screens are instant).
const HANG: Duration = Duration::from_secs(60);

pub(crate) type Pty = expectrl::session::OsSession;

pub(crate) fn spawn(env: &Env, args: &[&str], color: bool) -> Pty {
    // The pty starts with echo off; a real terminal has it on, and the
    // hidden prompts' switching it off is what `send_secret` waits for.
    // `stty echo` runs in the child before exec, so there is no race.
    spawn_script(env, args, color, "stty echo && exec \"$0\" \"$@\"")
}

/// As a shell with job control runs it: its own process group in the
/// foreground, the shell its parent in the same session. (A process that
/// leads the session alone is in an orphaned group, and the kernel never
/// stops those on Ctrl-Z.) The shell says the exit status it saw.
pub(crate) fn spawn_as_job(env: &Env, args: &[&str]) -> Pty {
    spawn_script(
        env,
        args,
        false,
        "set -m; stty echo; \"$0\" \"$@\"; echo \"[status $?]\"",
    )
}

fn spawn_script(env: &Env, args: &[&str], color: bool, script: &str) -> Pty {
    let cmd = env.command(args);
    let program = cmd.get_program().to_owned();
    let argv: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script).arg(program).args(argv);
    for (k, v) in envs {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    if !color {
        cmd.env("NO_COLOR", "1");
    }
    if !env.extra.iter().any(|(k, _)| k == "TERM") {
        cmd.env("TERM", "xterm-256color");
    }
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(HANG));
    p
}

/// Waits for the process to end; returns its exit status as text
/// (`Exited(pid, 0)`, `Signaled(pid, SIGINT, ..)`). A program that never
/// ends fails the test (and is killed when the session drops) instead of
/// blocking the suite.
pub(crate) fn finish(p: &mut Pty) -> String {
    // Drain output so the child never blocks on a full pty buffer.
    let _ = p.expect(expectrl::Eof);
    let deadline = Instant::now() + HANG;
    loop {
        // waitpid(WNOHANG): reaps the child once it has ended.
        let status = format!("{:?}", p.get_process().status().unwrap());
        if status != "StillAlive" {
            return status;
        }
        assert!(Instant::now() < deadline, "the program never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn exited(status: &str, code: i32) -> bool {
    status.starts_with("Exited(") && status.ends_with(&format!(", {code})"))
}

pub(crate) fn send(p: &mut Pty, s: &str) {
    p.send(s).unwrap();
}

/// Types at a hidden prompt. The prompt switches echo off with TCSAFLUSH,
/// which throws away anything typed before it: wait until echo is off.
pub(crate) fn send_secret(p: &mut Pty, s: &str) {
    use expectrl::process::Termios;
    let deadline = Instant::now() + HANG;
    while p.get_process().is_echo().unwrap() {
        assert!(Instant::now() < deadline, "echo never went off");
        std::thread::sleep(Duration::from_millis(5));
    }
    p.send(s).unwrap();
}

fn the_manuals_screens_from_request_to_login_in_spanish(env: &mut Env) {
    env.add_cliente();
    let mut p = spawn(env, &["reset", "request"], false);
    // 02: Tipo (Select: Enter keeps "Cliente Factura").
    p.expect("Tipo").unwrap();
    p.expect("Cliente Factura").unwrap();
    p.expect("Proveedor").unwrap();
    send(&mut p, "\r");
    // A bad NIT is explained and asked again, not aborted.
    p.expect("NIT (sin dígito verificador)").unwrap();
    send(&mut p, "90010A030\r");
    p.expect("solo lleva dígitos").unwrap();
    send(&mut p, "900.102.030-4\r");
    p.expect("Email").unwrap();
    send(&mut p, "sin-arroba\r");
    p.expect("le falta la @").unwrap();
    send(&mut p, &format!("{EMAIL}\r"));
    // 03: the message, then "no cierres esta pantalla": go on.
    p.expect("Se envió un código de confirmación al email asignado a su cuenta [a****@example.co]")
        .unwrap();
    p.expect("¿Continuar ahora con el código?").unwrap();
    p.expect("Sí").unwrap();
    send(&mut p, "\r");
    // 05: the code the customer reads from the email.
    p.expect("Código").unwrap();
    let code = env.last_code();
    send(&mut p, "0OoIl\r");
    p.expect("nunca llevan").unwrap();
    send(&mut p, &format!("{code}\r"));
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, "corta\r");
    p.expect("muy corta").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, "otra cosa distinta del todo\r");
    p.expect("no coinciden").unwrap();
    // Asked again from the start.
    p.expect("Nueva contraseña").unwrap();
    // Built from the account's email: refused once the code verified,
    // and asked again (the code stays usable).
    let built = "ana.gomez trompeta lluvia 77";
    send_secret(&mut p, &format!("{built}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{built}\r"));
    p.expect("La contraseña no puede construirse con").unwrap();
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    // 06 and 07.
    p.expect("Su contraseña ha sido actualizada.").unwrap();
    p.expect("¿Iniciar sesión ahora?").unwrap();
    send(&mut p, "\r");
    p.expect("CONTRASEÑA").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Sesión iniciada: Cliente Factura 900.102.030-4.")
        .unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    // The typos were caught at the prompts: the code was tried twice
    // (the refused password's attempt given back), and spent; nothing
    // counted against the account.
    let codes = env.codes();
    assert_eq!(codes.len(), 1);
    assert_eq!(
        (&codes[0]["state"], &codes[0]["attempts"]),
        (&"used".into(), &1.into())
    );
    let acc = env.account(NIT);
    assert_eq!(acc["failed_confirmations"], 0, "{acc}");
    assert!(
        acc["last_login_at"].is_string(),
        "logged in from the screen: {acc}"
    );
    // The password typed in the terminal is the one stored.
    env.login("cliente", NIT, STRONG).ok();
}

fn the_screens_in_english_with_colour(env: &mut Env) {
    env.add_user(
        "proveedor",
        "800003122",
        "ventas@acme.co",
        &["--username", "acme"],
    )
    .ok();
    let mut p = spawn(env, &["--lang", "en", "reset", "request"], true);
    p.expect("Type").unwrap();
    // Down arrow to "Supplier", Enter.
    send(&mut p, "\x1b[B");
    send(&mut p, "\r");
    p.expect("NIT or username").unwrap();
    send(&mut p, "acme\r");
    p.expect("Email").unwrap();
    send(&mut p, "ventas@acme.co\r");
    p.expect("A confirmation code was sent").unwrap();
    p.expect("Continue with the code now?").unwrap();
    p.expect("No").unwrap();
    // Down to "No", Enter.
    send(&mut p, "\x1b[B");
    send(&mut p, "\r");
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    // The code was issued for the proveedor; confirm it by email, later.
    let codes = env.codes();
    assert_eq!(codes.len(), 1);
    assert_eq!(
        (&codes[0]["type"], &codes[0]["nit"]),
        (&"proveedor".into(), &"800003122".into())
    );
    env.confirm("ventas@acme.co", &env.last_code(), STRONG).ok();
}

fn ctrl_c_at_a_prompt_leaves_nothing_half_done(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let before = env.state();

    // At the hidden password prompt (line mode).
    let mut p = spawn(
        env,
        &["reset", "confirm", "--user", NIT, "--code", &code],
        false,
    );
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, "caballo a medio escr");
    p.send(ControlCode::EndOfText).unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 130), "{status}");
    assert_eq!(env.state(), before, "nothing written");
    {
        use expectrl::process::Termios;
        assert!(
            p.get_process().is_echo().unwrap(),
            "the terminal's echo is back on after Ctrl-C at a hidden prompt"
        );
    }

    // At a selection (raw mode).
    let mut p = spawn(env, &["reset", "request"], true);
    p.expect("Tipo").unwrap();
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("recupera: Cancelado.").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 130), "{status}");
    assert_eq!(env.state(), before, "nothing written");

    // With --json, the interruption is a JSON document too, in English
    // with --lang en.
    let mut p = spawn(env, &["--json", "--lang", "en", "reset", "request"], true);
    p.expect("Type").unwrap();
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("recupera: Cancelled.").unwrap();
    p.expect(r#"{"error":"interrupted","exit_code":130,"message":"Cancelled.","status":"error"}"#)
        .unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 130), "{status}");
    assert_eq!(env.state(), before, "nothing written");

    // The code survived both.
    env.confirm(NIT, &code, STRONG).ok();
}

/// Ctrl-Z at a hidden prompt: a stopped process resumed with `fg` would go
/// on with echo back on (the shell restores its own settings), so the keys
/// do nothing there. And the confirmation is compared as the password is
/// stored (NFKC): "ó" typed precomposed, then as "o" + combining accent.
fn ctrl_z_at_a_hidden_prompt_neither_stops_nor_shows_it(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let mut p = spawn_as_job(env, &["reset", "confirm", "--user", NIT, "--code", &code]);
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, "luz mesa ");
    send(&mut p, "\x1a");
    // Stopped, it would never answer (and the test would time out here).
    // The terminal drops the line typed before Ctrl-Z, so what reaches the
    // prompt is the rest alone, and the confirmation does not match it.
    send(
        &mut p,
        &format!("{}\r", STRONG2.trim_start_matches("luz mesa ")),
    );
    p.expect("Confirme contraseña").unwrap();
    let decomposed = STRONG2.replace('ó', "o\u{301}");
    assert_ne!(decomposed, STRONG2);
    send_secret(&mut p, &format!("{decomposed}\r"));
    p.expect("Las contraseñas no coinciden.").unwrap();
    p.expect("Nueva contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG2}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{decomposed}\r"));
    let seen = p.expect("Su contraseña ha sido actualizada.").unwrap();
    let seen = String::from_utf8_lossy(seen.before()).to_string();
    assert!(
        !seen.contains("trombón") && !seen.contains("cactus"),
        "nothing of the password shows: {seen}"
    );
    send(&mut p, "\x1b[B\r"); // "¿Iniciar sesión ahora?" No
    p.expect("[status 0]").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    env.login("cliente", NIT, STRONG2).ok();
    env.login("cliente", NIT, &decomposed).ok();
}

/// After "Se envió un código…" the session goes on to the code and the new
/// password: Ctrl-C there cancels that step (130, "Cancelado."), it does
/// not end as if the password had been changed.
fn a_session_that_goes_on_after_the_code_was_sent_is_still_cancelled(env: &mut Env) {
    env.add_cliente();
    let mut p = spawn(
        env,
        &["reset", "request", "--nit", NIT, "--email", EMAIL],
        false,
    );
    p.expect("Se envió un código de confirmación").unwrap();
    p.expect("¿Continuar ahora con el código?").unwrap();
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("recupera: Cancelado.").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 130), "{status}");

    let mut p = spawn(
        env,
        &["reset", "request", "--nit", NIT, "--email", EMAIL],
        false,
    );
    p.expect("¿Continuar ahora con el código?").unwrap();
    send(&mut p, "\r");
    p.expect("Código").unwrap();
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("recupera: Cancelado.").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 130), "{status}");
    // The code mailed first is still good (the second request was inside
    // the minute: no new code).
    assert_eq!(env.mails().len(), 1);
    env.confirm(NIT, &env.last_code(), STRONG).ok();
}

/// `TERM=dumb` has no colour; a terminal that reports 0 columns (`script`,
/// some CI runners) still gets a table one can read.
fn tables_at_a_dumb_or_widthless_terminal(env: &mut Env) {
    env.add_user(
        "proveedor",
        "800003122",
        "ventas@acme.co",
        &[
            "--username",
            "acme",
            "--name",
            "Comercializadora Acme del Valle S.A.S.",
        ],
    )
    .ok();
    let output = |p: &mut Pty| {
        let all = p.expect(expectrl::Eof).unwrap();
        String::from_utf8_lossy(all.as_bytes()).to_string()
    };
    let mut p = spawn(env, &["user", "list"], true);
    p.get_process_mut().set_window_size(0, 0).unwrap();
    let text = output(&mut p);
    // Wrapped as an 80-column terminal wraps it: the name over lines, the
    // NIT whole.
    assert!(
        text.contains("Comercia") && text.contains("Acme del"),
        "{text}"
    );
    assert!(text.contains("800.003.122-6"), "{text}");

    env.set_env("TERM", "dumb");
    let mut p = spawn(env, &["user", "list"], true);
    let text = output(&mut p);
    assert!(!text.contains('\u{1b}'), "no colour: {text:?}");
    assert!(text.contains("800.003.122-6"), "{text}");
}

fn user_add_and_login_prompt_for_what_is_missing(env: &mut Env) {
    let mut p = spawn(env, &["user", "add", "--type", "proveedor"], false);
    p.expect("NIT (sin dígito verificador)").unwrap();
    send(&mut p, "800003122\r");
    p.expect("Email").unwrap();
    send(&mut p, "ventas@acme.co\r");
    p.expect("Usuario (opcional)").unwrap();
    // A username the rules refuse is explained and asked again.
    send(&mut p, "a\r");
    p.expect("Usuario (opcional)").unwrap();
    send(&mut p, "acme\r");
    p.expect("Nombre (opcional)").unwrap();
    send(&mut p, "Acme S.A.S.\r");
    // Who sets the password: the customer with a code comes first (so the
    // agent never learns it); here the agent types it.
    p.expect("La crea el cliente con un código").unwrap();
    p.expect("Escribirla ahora").unwrap();
    send(&mut p, "\x1b[B\r");
    p.expect("Nueva contraseña").unwrap();
    // Built from the username typed a moment ago: refused, asked again.
    send_secret(&mut p, "acme luz mesa trombón\r");
    p.expect("el usuario de la cuenta").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Confirme contraseña").unwrap();
    send_secret(&mut p, &format!("{STRONG}\r"));
    p.expect("Cuenta creada: Proveedor 800.003.122-6").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    let acc = env.account_of("proveedor", "acme");
    assert_eq!(
        (
            &acc["nit"],
            &acc["email"],
            &acc["username"],
            &acc["name"],
            &acc["has_password"]
        ),
        (
            &"800003122".into(),
            &"ventas@acme.co".into(),
            &"acme".into(),
            &"Acme S.A.S.".into(),
            &true.into()
        ),
    );

    // Enter at every optional question: no name, and no password (the
    // customer sets it with a code).
    let mut p = spawn(env, &["user", "add", "--nit", NIT, "--email", EMAIL], false);
    p.expect("Nombre (opcional)").unwrap();
    send(&mut p, "\r");
    p.expect("La crea el cliente con un código").unwrap();
    send(&mut p, "\r");
    p.expect("Sin contraseña: el cliente la creará con un código")
        .unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
    let acc = env.account(NIT);
    assert_eq!(
        (&acc["has_password"], &acc["name"]),
        (&false.into(), &Value::Null)
    );

    // "Iniciar sesión como Proveedor": the type is asked when nothing is given.
    let mut p = spawn(env, &["login"], false);
    p.expect("Tipo").unwrap();
    p.expect("Proveedor").unwrap();
    send(&mut p, "\x1b[B");
    send(&mut p, "\r");
    p.expect("USUARIO").unwrap();
    send(&mut p, "acme\r");
    p.expect("CONTRASEÑA").unwrap();
    send_secret(&mut p, "no es la contraseña\r");
    p.expect("Usuario o contraseña incorrectos.").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 1), "{status}");
    // The proveedor's password was checked, and was wrong; the one typed
    // at `user add` is the one stored.
    assert_eq!(env.account_of("proveedor", "acme")["failed_logins"], 1);
    let logins = env.audit(&["--event", "login"]);
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["detail"], "wrong_password");
    env.login("proveedor", "acme", STRONG).ok();
}

/// At a terminal, a wait for a busy SQLite database of more than a second
/// is said, so the agent does not take it for a hang; the command then
/// goes on once the other writer is done.
#[test]
fn a_wait_for_a_busy_database_is_said_at_a_terminal() {
    let mut env = Env::sqlite();
    env.add_cliente();
    env.set_env("RECUPERA_BUSY_TIMEOUT_MS", "20000");
    let holder = env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut p = spawn(&env, &["user", "unlock", NIT], false);
    p.expect("la base de datos está ocupada").unwrap();
    p.expect("se espera hasta 20 s").unwrap();
    holder.execute_batch("COMMIT").unwrap();
    p.expect("desbloqueada").unwrap();
    let status = finish(&mut p);
    assert!(exited(&status, 0), "{status}");
}
