//! Mail through real SMTP servers on 127.0.0.1, on both engines: what is
//! delivered, over which kind of TLS, what happens when the server is down,
//! silent, refusing or hostile, and how the background delivery that
//! `reset request` starts is kept apart from other deliveries and from
//! other users' eyes.

use crate::engines;
use crate::smtp_server::*;
use crate::util::*;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

engines!(
    the_delivered_message_is_the_manuals_email,
    an_english_account_gets_english_mail,
    starttls_with_auth_is_accepted_and_a_wrong_password_refused_clearly,
    tls_required_never_falls_back_to_plain_text,
    a_server_that_refuses_starttls_keeps_the_message_queued,
    smtps_speaks_tls_from_the_first_byte_and_checks_the_certificate,
    server_down_then_up_delivers_the_queued_message_once,
    queued_mail_for_a_dead_code_is_dropped_not_sent,
    smtp_timeout_bounds_the_wait_for_a_silent_server,
    retry_leaves_a_delivery_in_flight_alone_and_takes_over_a_dead_one,
    the_background_delivery_gets_no_secret_on_its_command_line,
    two_retries_at_once_never_send_a_message_twice,
    a_message_that_keeps_failing_is_dropped_after_ten_attempts,
    a_recipient_the_server_refuses_does_not_block_the_queue,
    a_server_reply_with_terminal_escapes_is_shown_made_visible,
);

const FROM: &str = "Soporte Ejemplo <no-reply@example.co>";
const FOOTER: &str = "Ejemplo S.A.S. · Soporte (601) 555 0101";
const SMTP_USER: &str = "recupera";
/// The SMTP password, and as it is written in a URL.
const SMTP_PASSWORD: &str = "s3cr3t p@ss-Quetzal";
const SMTP_PASSWORD_URL: &str = "s3cr3t%20p%40ss-Quetzal";
/// A reply no terminal should ever receive raw: clear the screen, retitle
/// the window.
const HOSTILE: &str = "5.1.1 \x1b[2J\x1b]0;pwned\x07 no such mailbox";

/// Mail goes to `url`, with the sender and footer a deployment would set.
fn use_smtp(env: &mut Env, url: &str) {
    env.set_env("RECUPERA_SMTP_URL", url);
    env.set_env("RECUPERA_MAIL_FROM", FROM);
    env.set_env("RECUPERA_MAIL_FOOTER", FOOTER);
}

fn plain(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}")
}

fn parsed(r: &Received) -> Mail {
    parse_mail(&r.data, "smtp".into())
}

/// Background deliveries: wait until every queued message had its first
/// attempt (sent, or failed and still queued).
fn settled(env: &Env) {
    wait_until("background deliveries", || {
        env.queue()
            .iter()
            .all(|r| r["attempts"].as_i64().unwrap_or(0) > 0 || r["state"] != "queued")
    });
}

/// `mail retry --json` that succeeds: its report.
fn retry_report(env: &Env) -> Value {
    env.cli(["--json", "mail", "retry"]).ok().json()["report"].clone()
}

fn last_error(row: &Value) -> &str {
    row["last_error"]
        .as_str()
        .unwrap_or_else(|| panic!("no last_error in {row}"))
}

/// An outbox path under a regular file: every delivery to it fails.
fn broken_outbox(env: &mut Env) {
    let file = env.root.join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    env.outbox = file.join("outbox");
}

/// Neither the raw ESC nor BEL byte: a terminal shown this cannot be
/// cleared or retitled.
fn assert_inert(what: &str, s: &str) {
    assert!(
        !s.contains('\x1b') && !s.contains('\x07'),
        "{what} carries raw escapes: {s:?}"
    );
}

/// The background `recupera mail deliver` started for this test's
/// database (its command line has "deliver"; its environment names our
/// database, so another test's delivery is never taken for it): its pid
/// and argv.
fn delivery_process(env: &Env) -> Option<(i32, Vec<String>)> {
    let ours = format!("RECUPERA_DB={}", env.db);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !argv.iter().any(|a| a == "deliver") {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|kv| kv == ours.as_bytes()) {
            return Some((pid, argv));
        }
    }
    None
}

fn wait_for_delivery_process(env: &Env) -> (i32, Vec<String>) {
    let mut found = None;
    wait_until("the background delivery process", || {
        found = delivery_process(env);
        found.is_some()
    });
    found.unwrap()
}

/// Gone, or a zombie about to be reaped.
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn the_delivered_message_is_the_manuals_email(env: &mut Env) {
    let server = SmtpServer::start();
    use_smtp(env, &plain(server.port));
    env.add_cliente();
    // Typed in another case: the mail goes to the stored address.
    env.request(NIT, "ANA.GOMEZ@example.co").ok();
    wait_until("the message", || server.received().len() == 1);
    settled(env);
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].rcpt_to,
        vec![EMAIL.to_string()],
        "one recipient, the stored one"
    );
    assert_eq!(got[0].mail_from, "no-reply@example.co");
    let raw = String::from_utf8_lossy(&got[0].data);
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(raw.contains("Subject: =?utf-8?"), "encoded subject: {raw}");
    let m = parsed(&got[0]);
    assert_eq!(m.subject, "Confirmación de cambio de contraseña");
    assert_eq!(m.to, vec![EMAIL.to_string()]);
    assert_eq!(m.from, "no-reply@example.co");
    let code = m.code.clone().expect("code in the text part");
    assert!(m.html.contains(&code), "code in the HTML part");
    assert!(m.text.contains("NIT: 900102030"));
    assert!(
        m.text
            .contains("Fecha de la solicitud: 24-02-2026 13:46:38"),
        "{}",
        m.text
    );
    // 12 h from 13:46:38 Bogotá time, said by the code's own expiry.
    assert!(
        m.text.contains(
            "Por seguridad este código caducará en 12Hrs (25-02-2026 01:46:38, hora de Colombia)."
        ),
        "{}",
        m.text
    );
    assert!(
        m.text
            .contains("Si usted no solicitó un cambio de contraseña, por favor haga caso omiso.")
    );
    assert!(m.text.contains(FOOTER));
    assert!(m.html.contains(FOOTER));
    let rows = env.queue();
    assert_eq!(rows[0]["state"], "sent");
    assert_eq!(rows[0]["attempts"], 1);
    assert_eq!(rows[0]["kind"], "reset_code");

    // The code works, and the notice arrives without secrets.
    env.confirm(NIT, &code, STRONG).ok();
    wait_until("the notice", || server.received().len() == 2);
    let notice = parsed(&server.received()[1]);
    assert_eq!(notice.subject, "Su contraseña ha sido actualizada");
    assert!(notice.text.contains("900.102.030-4"));
    assert!(!notice.text.contains(&code) && !notice.html.contains(&code));
    assert!(!notice.text.contains(STRONG));
    settled(env);
    assert_eq!(env.queue()[0]["kind"], "password_changed");
    assert_eq!(env.queue()[0]["state"], "sent");

    // Delivered mail is the recipient's: a deletion has no outbox to
    // sweep, and says so with nulls; a stray outbox file stays.
    std::fs::create_dir_all(&env.outbox).unwrap();
    let stray = env.outbox.join("1-a.eml");
    std::fs::write(&stray, format!("To: {EMAIL}\r\n\r\nhola\r\n")).unwrap();
    let v = env
        .cli(["--json", "user", "delete", NIT, "--yes"])
        .ok()
        .json();
    assert_eq!(v["status"], "deleted");
    assert_eq!(
        (&v["outbox_removed"], &v["outbox_failed"]),
        (&Value::Null, &Value::Null)
    );
    assert!(stray.exists());
}

fn an_english_account_gets_english_mail(env: &mut Env) {
    let server = SmtpServer::start();
    use_smtp(env, &plain(server.port));
    env.add_user("cliente", NIT, EMAIL, &["--mail-lang", "en"])
        .ok();
    // The agent works in Spanish; the customer reads English.
    env.request(NIT, EMAIL)
        .ok()
        .stdout_has("Se envió un código");
    wait_until("the message", || server.received().len() == 1);
    let m = parsed(&server.received()[0]);
    assert_eq!(m.subject, "Password change confirmation");
    assert!(m.text.contains("Code: "));
    assert!(m.text.contains("Request date: 24-02-2026 13:46:38"));
    assert!(m.text.contains("expire in 12 hours"), "{}", m.text);
}

fn starttls_with_auth_is_accepted_and_a_wrong_password_refused_clearly(env: &mut Env) {
    let pki = make_pki(&env.root);
    let server = SmtpServer::builder()
        .starttls(&pki)
        .auth(SMTP_USER, SMTP_PASSWORD)
        .start();
    let port = server.port;
    use_smtp(
        env,
        &format!("smtp://{SMTP_USER}:{SMTP_PASSWORD_URL}@localhost:{port}?tls=required"),
    );
    env.set_env("RECUPERA_SMTP_CA_FILE", &pki.ca.display().to_string());
    env.add_cliente();
    let good = env.request(NIT, EMAIL);
    good.ok();
    wait_until("the message", || server.received().len() == 1);
    let got = server.received();
    assert_eq!(
        got[0].user.as_deref(),
        Some(SMTP_USER),
        "authenticated over TLS"
    );
    assert!(parsed(&got[0]).code.is_some());

    // Wrong password: the request answers exactly the same, the message
    // stays queued, and `mail retry` says what is wrong.
    use_smtp(
        env,
        &format!("smtp://{SMTP_USER}:wrong@localhost:{port}?tls=required"),
    );
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok();
    let r = env.request("800003122", "b@example.co");
    assert_eq!(
        (r.code, r.stdout.replace("b****", "a****")),
        (good.code, good.stdout.clone())
    );
    settled(env);
    assert_eq!(server.received().len(), 1);
    let rows = env.queue();
    assert_eq!(rows[0]["recipient"], "b@example.co");
    assert_eq!(rows[0]["state"], "queued");
    assert!(last_error(&rows[0]).contains("535"), "{}", rows[0]);
    let retry = env.cli(["mail", "retry"]).expect_exit(78);
    retry.stderr_has("rechazó las credenciales");
    // No password is ever echoed back.
    for out in [&retry.stdout, &retry.stderr] {
        assert!(!out.contains("s3cr3t") && !out.contains("wrong"), "{out}");
    }
    let j = env.cli(["--json", "mail", "retry"]).expect_exit(78).json();
    assert_eq!(j["error"], "config");
}

fn tls_required_never_falls_back_to_plain_text(env: &mut Env) {
    // A server that does not offer STARTTLS: the client must refuse to send.
    let server = SmtpServer::start();
    use_smtp(
        env,
        &format!("smtp://localhost:{}?tls=required", server.port),
    );
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    settled(env);
    assert!(server.received().is_empty());
    let rows = env.queue();
    assert_eq!(rows[0]["state"], "queued");
    assert!(last_error(&rows[0]).contains("STARTTLS"), "{}", rows[0]);
    env.cli(["mail", "retry"])
        .expect_exit(69)
        .stderr_has("STARTTLS");
    assert!(server.received().is_empty());
}

fn a_server_that_refuses_starttls_keeps_the_message_queued(env: &mut Env) {
    // Offers STARTTLS, then refuses it: nothing may go in clear.
    let in_clear = Arc::new(AtomicBool::new(false));
    let seen = in_clear.clone();
    let port = raw_server(move |cmd| {
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        if matches!(verb.as_str(), "AUTH" | "MAIL" | "RCPT" | "DATA") {
            seen.store(true, Ordering::SeqCst);
        }
        match verb.as_str() {
            "EHLO" => Some("250-localhost\r\n250-8BITMIME\r\n250 STARTTLS".into()),
            "STARTTLS" => Some("454 4.7.0 TLS not available due to temporary reason".into()),
            "QUIT" => None,
            // Whatever comes after a refused STARTTLS must never be accepted.
            _ => Some("503 5.5.1 STARTTLS first".into()),
        }
    });
    use_smtp(env, &format!("smtp://localhost:{port}?tls=required"));
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    settled(env);
    let rows = env.queue();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "queued");
    assert_eq!(rows[0]["attempts"], 1);
    let err = last_error(&rows[0]);
    assert!(
        err.contains("454") && err.contains("TLS not available"),
        "{err}"
    );
    let r = env.cli(["--json", "mail", "retry"]).expect_exit(69);
    assert_eq!(r.json()["error"], "mail_unavailable");
    assert!(r.json()["message"].as_str().unwrap().contains("454"));
    assert_eq!(env.queue()[0]["state"], "queued");
    assert_eq!(env.queue()[0]["attempts"], 2);
    assert!(env.mails().is_empty(), "never fell back to the outbox");
    assert!(
        !in_clear.load(Ordering::SeqCst),
        "went on in clear after the refusal"
    );
}

fn smtps_speaks_tls_from_the_first_byte_and_checks_the_certificate(env: &mut Env) {
    // mailin-embedded only greets in clear (STARTTLS); a TLS front on the
    // public port gives it an smtps:// face, as stunnel would.
    let pki = make_pki(&env.root);
    let server = SmtpServer::builder().implicit_tls(&pki).start();
    use_smtp(env, &format!("smtps://localhost:{}", server.port));
    env.add_cliente();

    // The test CA is not trusted yet: the certificate is refused, nothing
    // is sent, the message waits.
    env.request(NIT, EMAIL).ok();
    settled(env);
    assert!(server.received().is_empty());
    let rows = env.queue();
    assert_eq!(rows[0]["state"], "queued");
    assert!(
        last_error(&rows[0]).to_lowercase().contains("certificate"),
        "{}",
        rows[0]
    );

    // Trusted: delivered through the TLS-only port.
    env.set_env("RECUPERA_SMTP_CA_FILE", &pki.ca.display().to_string());
    assert_eq!(retry_report(env)["sent"], 1);
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, vec![EMAIL.to_string()]);
    let code = parsed(&got[0]).code.unwrap();
    env.confirm(NIT, &code, STRONG).ok();

    // smtps:// to a server that greets in clear: no handshake, nothing sent.
    let clear = SmtpServer::start();
    use_smtp(env, &format!("smtps://localhost:{}", clear.port));
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok();
    env.request("800003122", "b@example.co").ok();
    settled(env);
    assert!(clear.received().is_empty());
    let row = env
        .queue()
        .into_iter()
        .find(|r| r["recipient"] == "b@example.co")
        .unwrap();
    assert_eq!(row["state"], "queued");
}

fn server_down_then_up_delivers_the_queued_message_once(env: &mut Env) {
    let port = reserve_port();
    use_smtp(env, &plain(port.port));
    env.add_cliente();
    // Answer with the server down = answer with it up (compared below).
    let down = env.request(NIT, EMAIL);
    down.ok();
    settled(env);
    let rows = env.queue();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "queued");
    assert_eq!(rows[0]["kind"], "reset_code");
    assert_eq!(rows[0]["attempts"], 1);
    assert!(rows[0]["last_error"].is_string());
    // Still down: retry says so, exit 69.
    env.cli(["mail", "retry"])
        .expect_exit(69)
        .stderr_has("no está disponible");

    // Up on the very port the client was given.
    let server = SmtpServer::builder().start_on(port);
    env.advance(60);
    assert_eq!(retry_report(env)["sent"], 1);
    assert_eq!(server.received().len(), 1);
    assert_eq!(retry_report(env)["sent"], 0);
    assert_eq!(server.received().len(), 1, "delivered once");
    // The code in the delivered message is the live one.
    let m = parsed(&server.received()[0]);
    assert!(
        m.text
            .contains("Fecha de la solicitud: 24-02-2026 13:46:38"),
        "request time kept"
    );
    env.confirm(NIT, &m.code.unwrap(), STRONG).ok();

    // With the server up, a new request gives the same answer as before.
    env.add_user("cliente", "800003122", "a.b@example.co", &[])
        .ok();
    let up = env.request("800003122", "a.b@example.co");
    assert_eq!(
        (up.code, &up.stdout, &up.stderr),
        (down.code, &down.stdout, &down.stderr)
    );
}

fn queued_mail_for_a_dead_code_is_dropped_not_sent(env: &mut Env) {
    let port = reserve_port();
    use_smtp(env, &plain(port.port));
    env.add_cliente();
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok();
    env.request(NIT, EMAIL).ok();
    env.advance(61);
    env.request(NIT, EMAIL).ok(); // replaces the first code
    env.request("800003122", "b@example.co").ok();
    env.advance(13 * 3600); // ...and now every code has expired
    env.add_user("cliente", "830015428", "c@example.co", &[])
        .ok();
    env.request("830015428", "c@example.co").ok(); // this one is live
    // Every background attempt has failed (server down).
    settled(env);
    let server = SmtpServer::builder().start_on(port);
    let report = retry_report(env);
    assert_eq!(report["dropped"], 3);
    assert_eq!(report["sent"], 1);
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, vec!["c@example.co".to_string()]);
    let states: Vec<String> = env
        .queue()
        .iter()
        .map(|r| r["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["sent", "dropped", "dropped", "dropped"]);
    // Finished messages go with their codes at purge time.
    env.cli(["codes", "purge"]).ok();
    let left = env.queue();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["recipient"], "c@example.co");
}

fn smtp_timeout_bounds_the_wait_for_a_silent_server(env: &mut Env) {
    // Accepts connections but never says a word.
    let port = silent_server();
    use_smtp(env, &plain(port));
    env.add_cliente();
    let start = Instant::now();
    env.cli(["reset", "request", "--nit", NIT, "--email", EMAIL])
        .env("RECUPERA_SMTP_TIMEOUT", "1")
        .ok();
    // The answer does not wait for the server at all (background delivery)...
    assert!(start.elapsed() < Duration::from_secs(8));
    // ...which gives up after the timeout, leaving the message queued.
    settled(env);
    assert_eq!(env.queue()[0]["state"], "queued");

    // RECUPERA_SMTP_TIMEOUT=1: retry gives up after about a second.
    let start = Instant::now();
    let r = env
        .cli(["--json", "mail", "retry"])
        .env("RECUPERA_SMTP_TIMEOUT", "1")
        .expect_exit(69);
    let short = start.elapsed();
    assert_eq!(r.json()["error"], "mail_unavailable");
    assert!(short < Duration::from_secs(8), "took {short:?}");

    // Without it, the default (10 s) applies: the setting is what made
    // the difference. (A lower bound: a busy machine only makes it longer.)
    let start = Instant::now();
    env.cli(["mail", "retry"]).expect_exit(69);
    let default = start.elapsed();
    assert!(default >= Duration::from_secs(9), "took {default:?}");
    assert_eq!(env.queue()[0]["attempts"], 3);
}

fn retry_leaves_a_delivery_in_flight_alone_and_takes_over_a_dead_one(env: &mut Env) {
    let gate = Gate::closed();
    let server = SmtpServer::builder().hold_at_ehlo(&gate).start();
    use_smtp(env, &plain(server.port));
    env.set_env("RECUPERA_SMTP_TIMEOUT", "120");
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    // The background delivery holds its claim while the server stalls it.
    let (pid, _) = wait_for_delivery_process(env);
    let report = retry_report(env);
    assert_eq!(report["sent"], 0);
    assert_eq!(report["not_tried"], 1);

    // Its process dies holding the claim: the claim lapses after its lease
    // (15 minutes), not before.
    // SAFETY: kill(2) on the delivery process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    wait_until("the delivery process to die", || is_dead(pid));
    gate.open();
    env.advance(15 * 60 - 1);
    assert_eq!(retry_report(env)["not_tried"], 1);
    assert!(server.received().is_empty());
    env.advance(1);
    assert_eq!(retry_report(env)["sent"], 1);
    let got = server.received();
    assert_eq!(got.len(), 1, "sent once");
    env.confirm(NIT, &parsed(&got[0]).code.unwrap(), STRONG)
        .ok();
}

fn the_background_delivery_gets_no_secret_on_its_command_line(env: &mut Env) {
    let pki = make_pki(&env.root);
    let gate = Gate::closed();
    let server = SmtpServer::builder()
        .starttls(&pki)
        .auth(SMTP_USER, SMTP_PASSWORD)
        .hold_at_ehlo(&gate)
        .start();
    use_smtp(
        env,
        &format!(
            "smtp://{SMTP_USER}:{SMTP_PASSWORD_URL}@localhost:{}?tls=required",
            server.port
        ),
    );
    env.set_env("RECUPERA_SMTP_CA_FILE", &pki.ca.display().to_string());
    env.set_env("RECUPERA_SMTP_TIMEOUT", "120");
    env.add_cliente();
    env.request(NIT, EMAIL).ok();

    // While the server stalls it, the delivery process is alive: its
    // command line is what any user of the machine can read.
    let (pid, argv) = wait_for_delivery_process(env);
    let id = env.queue()[0]["id"].to_string();
    assert_eq!(
        argv[1..],
        ["mail", "deliver", "--id", id.as_str()],
        "{argv:?}"
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
    assert!(cmdline.contains("deliver"), "still the same process");

    gate.open();
    wait_until("the message", || server.received().len() == 1);
    let got = server.received();
    assert_eq!(got[0].user.as_deref(), Some(SMTP_USER), "it did log in");
    let code = parsed(&got[0]).code.unwrap();
    for secret in [SMTP_PASSWORD, SMTP_PASSWORD_URL, "s3cr3t", code.as_str()] {
        assert!(!cmdline.contains(secret), "{secret:?} in argv: {cmdline:?}");
    }
    settled(env);
    assert_eq!(env.queue()[0]["state"], "sent");
    env.confirm(NIT, &code, STRONG).ok();
}

fn two_retries_at_once_never_send_a_message_twice(env: &mut Env) {
    let good_outbox = env.outbox.clone();
    broken_outbox(env);
    let nits = [
        "800003122",
        "830015428",
        "890900841",
        "900206480",
        "899999034",
        "17343020",
        "6386949",
        "900102030",
    ];
    for (i, nit) in nits.iter().enumerate() {
        let email = format!("u{i}@example.co");
        env.add_user("cliente", nit, &email, &[]).ok();
        env.request(nit, &email).ok();
    }
    let queue = env.queue();
    assert_eq!(queue.len(), 8);
    assert!(
        queue
            .iter()
            .all(|r| r["state"] == "queued" && r["attempts"] == 1),
        "{queue:?}"
    );
    env.outbox = good_outbox;
    let env = &*env;
    let runs: Vec<Run> = std::thread::scope(|s| {
        let a = s.spawn(|| env.cli(["--json", "mail", "retry"]).run());
        let b = s.spawn(|| env.cli(["--json", "mail", "retry"]).run());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let sent: i64 = runs
        .iter()
        .map(|r| r.ok().json()["report"]["sent"].as_i64().unwrap())
        .sum();
    assert_eq!(sent, 8);
    let mails = env.mails();
    assert_eq!(mails.len(), 8, "each message exactly once");
    let mut to: Vec<String> = mails.iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 8);
    // And each delivered code is the live one.
    for (i, nit) in nits.iter().enumerate() {
        let m = mails
            .iter()
            .find(|m| m.to[0] == format!("u{i}@example.co"))
            .unwrap();
        env.confirm(nit, m.code.as_ref().unwrap(), STRONG).ok();
    }
}

fn a_message_that_keeps_failing_is_dropped_after_ten_attempts(env: &mut Env) {
    // Deliveries that cannot be made (the outbox under a file: an outage)
    // never drop a message, however many runs meet them.
    broken_outbox(env);
    env.add_cliente();
    env.request(NIT, EMAIL).ok(); // attempt 1
    for _ in 0..11 {
        env.cli(["mail", "retry"]).expect_exit(69);
    }
    assert_eq!(env.queue()[0]["attempts"], 12);
    assert_eq!(env.queue()[0]["state"], "queued");

    // A recipient the server refuses for good: dropped at its tenth
    // refusal, and the run that drops it counts it.
    let server = SmtpServer::builder()
        .refuse_rcpt("bad@example.co", 550, "5.1.1 Mailbox unavailable")
        .start();
    use_smtp(env, &plain(server.port));
    env.add_user("cliente", "800003122", "bad@example.co", &[])
        .ok();
    env.request("800003122", "bad@example.co").ok(); // refused: 1
    settled(env);
    let bad = |env: &Env| {
        env.queue()
            .into_iter()
            .find(|r| r["recipient"] == "bad@example.co")
            .unwrap()
    };
    assert_eq!(bad(env)["attempts"], 1);
    // Ana's message goes with the first run.
    env.cli(["mail", "retry"]).expect_exit(65);
    for _ in 0..7 {
        env.cli(["mail", "retry"]).expect_exit(65);
    }
    assert_eq!(bad(env)["attempts"], 9);
    assert_eq!(bad(env)["state"], "queued");
    let r = retry_report(env);
    assert_eq!(
        (r["dropped"].as_u64(), r["failed"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    let row = bad(env);
    assert_eq!(row["state"], "dropped");
    assert_eq!(row["attempts"], 10);
    assert!(row["finished_at"].is_string());
    assert!(last_error(&row).starts_with("too many attempts"), "{row}");
    // Dropped is final: nothing left to try.
    assert_eq!(retry_report(env)["dropped"], 0);
}

fn a_recipient_the_server_refuses_does_not_block_the_queue(env: &mut Env) {
    let port = reserve_port();
    use_smtp(env, &plain(port.port));
    env.add_user("cliente", "800003122", "bad@example.co", &[])
        .ok();
    env.add_user("cliente", "830015428", "good@example.co", &[])
        .ok();
    env.request("800003122", "bad@example.co").ok();
    env.request("830015428", "good@example.co").ok();
    settled(env);
    let server = SmtpServer::builder()
        .refuse_rcpt("bad@example.co", 550, "5.1.1 Mailbox unavailable")
        .start_on(port);
    let r = env.cli(["--json", "mail", "retry"]).expect_exit(65);
    assert_eq!(r.json()["error"], "bad_data");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, vec!["good@example.co".to_string()]);
    let rows = env.queue();
    let bad = rows
        .iter()
        .find(|r| r["recipient"] == "bad@example.co")
        .unwrap();
    assert_eq!(bad["state"], "queued");
    assert!(last_error(bad).contains("550"), "{bad}");
    let good = rows
        .iter()
        .find(|r| r["recipient"] == "good@example.co")
        .unwrap();
    assert_eq!(good["state"], "sent");
}

fn a_server_reply_with_terminal_escapes_is_shown_made_visible(env: &mut Env) {
    let server = SmtpServer::builder()
        .refuse_rcpt("bad@example.co", 550, HOSTILE)
        .start();
    use_smtp(env, &plain(server.port));
    env.add_user("cliente", "800003122", "bad@example.co", &[])
        .ok();
    env.request("800003122", "bad@example.co").ok();
    settled(env);

    // The table: the reply is there, its escapes made visible.
    let table = env.cli(["mail", "list"]).ok();
    assert_inert("mail list", &table.stdout);
    table.stdout_has("\\u{1b}[2J").stdout_has("pwned");

    // The JSON: well-formed, the same visible text, no raw byte inside.
    let raw = env.cli(["--json", "mail", "list"]).ok();
    assert_inert("mail list --json", &raw.stdout);
    let rows = raw.json();
    let err = last_error(&rows[0]);
    assert!(err.contains("550") && err.contains("pwned"), "{err}");
    assert_inert("last_error", err);

    // A 550 is this message's refusal: retry counts it (exit 65)...
    let r = env.cli(["mail", "retry"]).expect_exit(65);
    assert_inert("mail retry stdout", &r.stdout);
    assert_inert("mail retry stderr", &r.stderr);

    // ...while a temporary refusal stops the run and shows the reply on
    // stderr: made visible there too.
    let stopping = SmtpServer::builder()
        .refuse_rcpt("bad@example.co", 451, HOSTILE)
        .start();
    use_smtp(env, &plain(stopping.port));
    let r = env.cli(["mail", "retry"]).expect_exit(69);
    assert_inert("mail retry stdout", &r.stdout);
    assert_inert("mail retry stderr", &r.stderr);
    r.stderr_has("451")
        .stderr_has("\\u{1b}[2J")
        .stderr_has("pwned");
    let r = env.cli(["--json", "mail", "retry"]).expect_exit(69);
    assert_inert("mail retry --json", &r.stdout);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("pwned"), "{message}");
    assert_inert("the JSON message", &message);
}

/// The port reservation the tests rely on: refused while held, never given
/// to another socket, then served on the very same port.
#[test]
fn a_reserved_port_is_down_and_held_until_the_server_starts() {
    let port = reserve_port();
    let p = port.port;
    let refused = std::net::TcpStream::connect(("127.0.0.1", p)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", p)).is_err(),
        "another socket took the reserved port"
    );
    let server = SmtpServer::builder().start_on(port);
    assert_eq!(server.port, p);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p)).unwrap();
    let mut greeting = [0u8; 3];
    std::io::Read::read_exact(&mut s, &mut greeting).unwrap();
    assert_eq!(&greeting, b"220");
}

/// Only a hand-edited database holds an address lettre refuses: that
/// message is dropped with the reason and the rest of the queue goes on.
#[test]
fn a_message_that_cannot_be_built_is_dropped_and_the_rest_still_goes() {
    let env = Env::sqlite();
    env.add_cliente();
    let db = env.db();
    db.execute(
        "INSERT INTO accounts (id, kind, nit, email, lang, created_at) \
         VALUES (2, 'cliente', '800003122', 'no es un email', 'es', 0)",
        [],
    )
    .unwrap();
    for (id, account, to) in [(100, 2, "no es un email"), (101, 1, EMAIL)] {
        db.execute(
            "INSERT INTO notices (id, account_id, kind, recipient, created_at, attempts) \
             VALUES (?1, ?2, 'password_changed', ?3, 0, 1)",
            rusqlite::params![id, account, to],
        )
        .unwrap();
    }
    let r = env.cli(["--json", "mail", "retry"]).ok().json();
    assert_eq!(r["report"]["dropped"], 1);
    assert_eq!(r["report"]["sent"], 1);
    let mails = env.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec![EMAIL.to_string()]);
    let rows = env.queue();
    let bad = rows.iter().find(|r| r["id"] == 100).unwrap();
    assert_eq!(bad["state"], "dropped");
    assert!(last_error(bad).starts_with("unbuildable"), "{bad}");
}
