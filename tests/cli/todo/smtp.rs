//! Mail through a real SMTP server on 127.0.0.1.

use crate::smtp_server::*;
use crate::util::*;
use std::time::{Duration, Instant, SystemTime};

fn smtp_env(url: String) -> Env {
    let mut env = Env::new();
    env.extra.push(("RECUPERA_SMTP_URL".into(), url));
    env.extra.push((
        "RECUPERA_MAIL_FROM".into(),
        "Soporte Ejemplo <no-reply@example.co>".into(),
    ));
    env.extra.push((
        "RECUPERA_MAIL_FOOTER".into(),
        "Ejemplo S.A.S. · Soporte (601) 555 0101".into(),
    ));
    env
}

fn parsed(r: &Received) -> Mail {
    parse_mail(&r.data, "smtp".into(), SystemTime::now())
}

/// Background deliveries: wait until every queued message had its first
/// attempt (sent, or failed and still queued).
fn settled(env: &Env) {
    wait_until("background deliveries", || {
        mail_rows(env)
            .iter()
            .all(|r| r["attempts"].as_i64().unwrap_or(0) > 0 || r["state"] != "queued")
    });
}

fn mail_rows(env: &Env) -> Vec<serde_json::Value> {
    env.run(&["--json", "mail", "list"], None)
        .ok()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_delivered_message_is_the_manuals_email() {
    let server = SmtpServer::start(0, None, None);
    let env = smtp_env(format!("smtp://127.0.0.1:{}", server.port));
    env.add_cliente();
    // Typed in another case: the mail goes to the stored address.
    env.request(NIT, "ANA.GOMEZ@example.co").ok();
    wait_until("the message", || server.received().len() == 1);
    settled(&env);
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
    assert!(m.text.contains("caducará en 12Hrs"));
    assert!(
        m.text
            .contains("Si usted no solicitó un cambio de contraseña, por favor haga caso omiso.")
    );
    assert!(m.text.contains("Ejemplo S.A.S. · Soporte (601) 555 0101"));
    assert!(m.html.contains("Ejemplo S.A.S. · Soporte (601) 555 0101"));
    let rows = mail_rows(&env);
    assert_eq!(rows[0]["state"], "sent");
    assert_eq!(rows[0]["attempts"], 1);

    // The code works, and the notice arrives without secrets.
    env.confirm(NIT, &code, STRONG).ok();
    wait_until("the notice", || server.received().len() == 2);
    let got = server.received();
    let notice = parsed(&got[1]);
    assert_eq!(notice.subject, "Su contraseña ha sido actualizada");
    assert!(notice.text.contains("900.102.030-4"));
    assert!(!notice.text.contains(&code) && !notice.html.contains(&code));
    assert!(!notice.text.contains(STRONG));
}

#[test]
fn an_english_account_gets_english_mail() {
    let server = SmtpServer::start(0, None, None);
    let env = smtp_env(format!("smtp://127.0.0.1:{}", server.port));
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
    assert!(m.text.contains("expire in 12 hours"));
}

#[test]
fn starttls_with_auth_is_accepted_and_a_wrong_password_refused_clearly() {
    let env0 = Env::new();
    let pki = make_pki(&env0.root);
    let server = SmtpServer::start(0, Some(&pki), Some(("recupera", "s3cr3t p@ss")));
    let url = format!(
        "smtp://recupera:s3cr3t%20p%40ss@localhost:{}?tls=required",
        server.port
    );
    let mut env = smtp_env(url);
    env.extra
        .push(("RECUPERA_SMTP_CA_FILE".into(), pki.ca.display().to_string()));
    env.add_cliente();
    let good = env.request(NIT, EMAIL);
    good.ok();
    wait_until("the message", || server.received().len() == 1);
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].user.as_deref(),
        Some("recupera"),
        "authenticated over TLS"
    );
    assert!(parsed(&got[0]).code.is_some());

    // Wrong password: the request answers exactly the same, the message
    // stays queued, and `mail retry` says what is wrong.
    let bad_url = format!(
        "smtp://recupera:wrong@localhost:{}?tls=required",
        server.port
    );
    env.extra[0].1 = bad_url;
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok();
    let r = env.request("800003122", "b@example.co");
    assert_eq!(
        (r.code, r.stdout.replace("b****", "a****")),
        (good.code, good.stdout.clone())
    );
    settled(&env);
    assert_eq!(server.received().len(), 1);
    let rows = mail_rows(&env);
    assert_eq!(rows[0]["state"], "queued");
    assert!(
        rows[0]["last_error"].as_str().unwrap().contains("535"),
        "{}",
        rows[0]
    );
    env.advance(60);
    let retry = env.run(&["mail", "retry"], None);
    retry.code(78).stderr_has("rechazó las credenciales");
    // The password is never echoed back.
    assert!(!retry.stderr.contains("s3cr3t") && !retry.stdout.contains("wrong"));
}

#[test]
fn tls_required_never_falls_back_to_plain_text() {
    // A server without STARTTLS: the client must refuse to send.
    let server = SmtpServer::start(0, None, None);
    let env = smtp_env(format!("smtp://localhost:{}?tls=required", server.port));
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    settled(&env);
    assert!(server.received().is_empty());
    let rows = mail_rows(&env);
    assert_eq!(rows[0]["state"], "queued");
    env.run(&["mail", "retry"], None).code(69);
}

#[test]
fn server_down_then_up_delivers_the_queued_message_once() {
    let port = free_port();
    let mut env = smtp_env(format!("smtp://127.0.0.1:{port}"));
    env.add_cliente();
    // Answer with the server down = answer with it up (compared below).
    let down = env.request(NIT, EMAIL);
    down.ok();
    settled(&env);
    let rows = mail_rows(&env);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["state"], "queued");
    assert_eq!(rows[0]["kind"], "reset_code");
    assert_eq!(rows[0]["attempts"], 1);
    assert!(rows[0]["last_error"].is_string());
    // Still down: retry says so, exit 69.
    env.run(&["mail", "retry"], None)
        .code(69)
        .stderr_has("no está disponible");

    let server = SmtpServer::start(port, None, None);
    env.advance(60);
    let r = env.run(&["--json", "mail", "retry"], None);
    assert_eq!(r.ok().json()["report"]["sent"], 1);
    assert_eq!(server.received().len(), 1);
    let again = env.run(&["--json", "mail", "retry"], None);
    assert_eq!(again.ok().json()["report"]["sent"], 0);
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

#[test]
fn queued_mail_for_a_dead_code_is_dropped_not_sent() {
    let port = free_port();
    let mut env = smtp_env(format!("smtp://127.0.0.1:{port}"));
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
    // Every background attempt has failed (server down); past the in-flight
    // window, retry takes them all.
    settled(&env);
    env.advance(60);
    let server = SmtpServer::start(port, None, None);
    let r = env.run(&["--json", "mail", "retry"], None);
    let report = &r.ok().json()["report"];
    assert_eq!(report["dropped"], 3);
    assert_eq!(report["sent"], 1);
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, vec!["c@example.co".to_string()]);
    // Finished messages go with their codes at purge time.
    assert_eq!(env.count("SELECT COUNT(*) FROM mail_queue"), 4);
    env.run(&["codes", "purge"], None).ok();
    assert_eq!(env.count("SELECT COUNT(*) FROM mail_queue"), 1);
}

#[test]
fn a_silent_server_does_not_hang_the_command() {
    // Accepts connections (the kernel's backlog) but never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut env = smtp_env(format!("smtp://127.0.0.1:{port}"));
    env.extra.push(("RECUPERA_SMTP_TIMEOUT".into(), "1".into()));
    env.add_cliente();
    let start = Instant::now();
    env.request(NIT, EMAIL).ok();
    // The answer does not wait for the server at all (background delivery)...
    assert!(start.elapsed() < Duration::from_secs(5));
    // ...and the delivery gives up after the timeout, leaving it queued.
    settled(&env);
    assert_eq!(mail_rows(&env)[0]["state"], "queued");
    env.advance(60);
    let start = Instant::now();
    env.run(&["mail", "retry"], None).code(69);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "retry bounded by the timeout"
    );
    drop(listener);
}

#[test]
fn retry_leaves_a_message_in_flight_alone() {
    let mut env = Env::new();
    env.add_cliente();
    // A notice whose delivery another process has claimed a moment ago.
    env.db()
        .execute(
            "INSERT INTO mail_queue (account_id, kind, recipient, created_at, claim, \
             claimed_until) VALUES (1, 'password_changed', ?1, ?2, 'other', ?3)",
            rusqlite::params![EMAIL, env.now, env.now + 900],
        )
        .unwrap();
    let r = env.run(&["--json", "mail", "retry"], None).ok().json();
    assert_eq!(r["report"]["sent"], 0);
    assert_eq!(r["report"]["not_tried"], 1);
    // A claim that lapsed (its process died) is taken over.
    env.advance(900);
    let r = env.run(&["--json", "mail", "retry"], None).ok().json();
    assert_eq!(r["report"]["sent"], 1);
    assert_eq!(env.mails()[0].subject, "Su contraseña ha sido actualizada");
}

/// An outbox path under a regular file: every delivery fails.
fn broken_outbox(env: &mut Env) {
    let file = env.root.join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    env.outbox = file.join("outbox");
}

#[test]
fn two_retries_at_once_never_send_a_message_twice() {
    let mut env = Env::new();
    let good_outbox = env.outbox.clone();
    broken_outbox(&mut env);
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
    assert_eq!(
        env.count("SELECT COUNT(*) FROM mail_queue WHERE state = 'queued' AND attempts = 1"),
        8
    );
    env.outbox = good_outbox;
    let runs: Vec<Run> = std::thread::scope(|s| {
        let a = s.spawn(|| env.run(&["--json", "mail", "retry"], None));
        let b = s.spawn(|| env.run(&["--json", "mail", "retry"], None));
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

#[test]
fn a_message_that_keeps_failing_is_dropped_after_ten_attempts() {
    let mut env = Env::new();
    broken_outbox(&mut env);
    env.add_cliente();
    env.request(NIT, EMAIL).ok(); // attempt 1
    for _ in 0..8 {
        env.run(&["mail", "retry"], None).code(69);
    }
    assert_eq!(env.count("SELECT attempts FROM mail_queue"), 9);
    env.run(&["mail", "retry"], None).code(69);
    let rows = mail_rows(&env);
    assert_eq!(rows[0]["state"], "dropped");
    assert!(
        rows[0]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("too many attempts")
    );
}

#[test]
fn a_recipient_the_server_refuses_does_not_block_the_queue() {
    let port = free_port();
    let mut env = smtp_env(format!("smtp://127.0.0.1:{port}"));
    env.add_user("cliente", "800003122", "bad@example.co", &[])
        .ok();
    env.add_user("cliente", "830015428", "good@example.co", &[])
        .ok();
    env.request("800003122", "bad@example.co").ok();
    env.request("830015428", "good@example.co").ok();
    settled(&env);
    let server = SmtpServer::start_rejecting(port, "bad@example.co");
    env.advance(60);
    let r = env.run(&["--json", "mail", "retry"], None);
    r.code(65);
    assert_eq!(r.json()["error"], "bad_data");
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, vec!["good@example.co".to_string()]);
    let rows = mail_rows(&env);
    let bad = rows
        .iter()
        .find(|r| r["recipient"] == "bad@example.co")
        .unwrap();
    assert_eq!(bad["state"], "queued");
    assert!(bad["last_error"].as_str().unwrap().contains("550"), "{bad}");
}

#[test]
fn a_message_that_cannot_be_built_is_dropped_and_the_rest_still_goes() {
    let env = Env::new();
    env.add_cliente();
    let db = env.db();
    // An address only a hand-edited database could hold.
    db.execute(
        "INSERT INTO accounts (id, kind, nit, email, lang, created_at) \
         VALUES (2, 'cliente', '800003122', 'no es un email', 'es', 0)",
        [],
    )
    .unwrap();
    for account in [2, 1] {
        db.execute(
            "INSERT INTO mail_queue (account_id, kind, recipient, created_at, attempts) \
             VALUES (?1, 'password_changed', 'x', 0, 1)",
            [account],
        )
        .unwrap();
    }
    let r = env.run(&["--json", "mail", "retry"], None).ok().json();
    assert_eq!(r["report"]["dropped"], 1);
    assert_eq!(r["report"]["sent"], 1);
    assert_eq!(env.mails().len(), 1);
}
