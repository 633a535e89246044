//! Support-desk operations on both engines: disable/enable, edit with
//! notices, habeas-data delete, audit filters and CSV.

use crate::engines;
use crate::util::*;
use serde_json::Value;

engines!(
    a_disabled_account_cannot_log_in_nor_get_codes,
    enabling_does_not_revive_old_codes,
    a_new_email_warns_both_addresses_and_kills_codes,
    edit_follows_the_rules_of_user_add,
    delete_needs_yes_without_a_terminal,
    delete_leaves_no_personal_data_and_keeps_the_history,
    a_deletion_says_how_many_of_its_messages_left_the_outbox,
    audit_filters_by_date_event_agent_and_account,
    audit_exports_csv_for_compliance,
    a_nit_two_types_share_names_the_cliente_without_type,
);

/// SPEC: "--type defaults to cliente". A NIT a cliente and a proveedor
/// share names the cliente on every agent command unless --type says
/// otherwise; a NIT only a proveedor has names it.
fn a_nit_two_types_share_names_the_cliente_without_type(env: &mut Env) {
    env.add_cliente();
    env.add_user("proveedor", NIT, "compras@acme.co", &["--username", "acme"])
        .ok();
    env.add_user("proveedor", "800003122", "v@acme.co", &[])
        .ok();
    let kind = |args: &[&str]| -> Value {
        let mut all = vec!["--json", "user", "show"];
        all.extend_from_slice(args);
        env.cli(all).ok().json()["type"].clone()
    };
    assert_eq!(kind(&[NIT]), "cliente");
    assert_eq!(kind(&[NIT, "--type", "proveedor"]), "proveedor");
    assert_eq!(kind(&["acme"]), "proveedor");
    assert_eq!(kind(&["800003122"]), "proveedor");
    env.cli(["user", "disable", NIT, "--reason", "prueba"]).ok();
    assert_eq!(env.account_of("cliente", NIT)["disabled"], true);
    assert_eq!(env.account_of("proveedor", NIT)["disabled"], false);
}

fn a_disabled_account_cannot_log_in_nor_get_codes(env: &mut Env) {
    env.add_cliente_with_password();
    env.request(NIT, EMAIL).ok();
    let pending = env.last_code();
    let answer_before = env.request("800003122", EMAIL); // unknown account
    let v = env
        .cli([
            "--json",
            "user",
            "disable",
            NIT,
            "--reason",
            "cuenta comprometida, ticket 4521",
        ])
        .ok()
        .json();
    assert_eq!(v["status"], "disabled");
    assert_eq!(v["account"]["disabled"], true);
    assert_eq!(
        v["account"]["disabled_reason"],
        "cuenta comprometida, ticket 4521"
    );
    assert_eq!(v["account"]["recovery_enabled"], false);
    // Pending codes die.
    assert_eq!(env.codes_in("pending"), 0);
    assert_eq!(env.codes_in("replaced"), 1);
    // Login: the usual refusal, even with the right password.
    env.login_refused("cliente", NIT, STRONG);
    // Request: the same answer as for anyone, but no code and no mail.
    env.advance(61);
    let mails = env.mails().len();
    let r = env.request(NIT, EMAIL);
    assert_eq!(
        (r.code, &r.stdout, &r.stderr),
        (
            answer_before.code,
            &answer_before.stdout,
            &answer_before.stderr
        )
    );
    assert_eq!(env.mails().len(), mails);
    assert_eq!(env.codes_in("pending"), 0);
    // Confirm with the code it had: the one refusal.
    env.confirm_refused(NIT, &pending, STRONG2);
    // Shown distinctly, with the reason.
    let show = env.cli(["user", "show", NIT]).ok();
    show.stdout_has("DESHABILITADA").stdout_has("ticket 4521");
    env.cli(["user", "list"]).ok().stdout_has("DESHABILITADA");
    // Unlocking it does not say it can log in: it is still disabled.
    let r = env.cli(["user", "unlock", NIT]).ok();
    r.stdout_has("sigue deshabilitada");
    assert!(!r.stdout.contains("habilitados"), "{}", r.stdout);
    let ev = env.audit(&["--event", "user.disable"]);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["agent"], "test-agent");
    let details = env.audit_details("reset");
    assert!(details.contains(&"disabled".to_string()), "{details:?}");
}

fn enabling_does_not_revive_old_codes(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let old = env.last_code();
    env.cli(["user", "disable", NIT]).ok();
    let v = env.cli(["--json", "user", "enable", NIT]).ok().json();
    assert_eq!(v["status"], "enabled");
    assert_eq!(v["account"]["disabled"], false);
    assert_eq!(v["account"]["recovery_enabled"], true);
    env.confirm_refused(NIT, &old, STRONG);
    env.advance(61);
    env.request(NIT, EMAIL).ok();
    let new = env.last_code();
    assert_ne!(new, old);
    env.confirm(NIT, &new, STRONG).ok();
    assert_eq!(env.audit_count("user.enable", Some("ok")), 1);
}

fn a_new_email_warns_both_addresses_and_kills_codes(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let old_code = env.last_code();
    let new_email = "nueva.direccion@otro.co";
    let v = env
        .cli([
            "--json",
            "user",
            "edit",
            NIT,
            "--email",
            new_email,
            "--name",
            "Ana M. Gómez",
        ])
        .ok()
        .json();
    assert_eq!(v["status"], "updated");
    assert_eq!(v["codes_killed"], 1);
    assert_eq!(v["account"]["email"], new_email);
    // Two notices: the old address is told where the account went (masked),
    // the new one is told it is now registered. No secret in either.
    let mails = env.mails();
    let to_old = mails
        .iter()
        .find(|m| m.to == [EMAIL.to_string()] && m.code.is_none())
        .unwrap();
    assert_eq!(to_old.subject, "Cambio del email registrado");
    assert!(to_old.text.contains("n****@otro.co"), "{}", to_old.text);
    assert!(
        !to_old.text.contains(new_email),
        "the new address is masked"
    );
    assert!(to_old.text.contains("comuníquese de inmediato con soporte"));
    let to_new = mails
        .iter()
        .find(|m| m.to == [new_email.to_string()])
        .unwrap();
    assert!(to_new.text.contains("900.102.030-4"));
    for m in [to_old, to_new] {
        assert!(!m.text.contains(&old_code));
    }
    // The old code is dead; codes go only to the new address from now on.
    env.confirm_refused(NIT, &old_code, STRONG);
    env.advance(61);
    let n = env.mails().len();
    env.request(NIT, EMAIL).ok();
    assert_eq!(env.mails().len(), n, "the old address gets nothing");
    env.advance(61);
    env.request(NIT, new_email).ok();
    let last = env.mails().pop().unwrap();
    assert_eq!(last.to, [new_email.to_string()]);
    env.confirm(NIT, &last.code.unwrap(), STRONG).ok();
    // Audited with before and after.
    let ev = env.audit(&["--event", "user.edit"]);
    let d = ev[0]["detail"].as_str().unwrap();
    assert!(d.contains(&format!("email: {EMAIL} -> {new_email}")), "{d}");
    assert!(d.contains("name: - -> Ana M. Gómez"), "{d}");
}

fn edit_follows_the_rules_of_user_add(env: &mut Env) {
    env.add_user(
        "proveedor",
        "800003122",
        "a@acme.co",
        &["--username", "acme"],
    )
    .ok();
    env.add_user(
        "proveedor",
        "830015428",
        "b@acme.co",
        &["--username", "otro"],
    )
    .ok();
    let before = env.state();
    env.cli(["user", "edit", "otro", "--username", "ACME"])
        .expect_exit(65)
        .stderr_has("ya está en uso");
    env.cli(["user", "edit", "otro", "--email", "a@b.co,c@d.co"])
        .expect_exit(65);
    env.cli(["user", "edit", "otro", "--email", "ana@ex\u{200B}ample.co"])
        .expect_exit(65);
    env.cli(["user", "edit", "otro"])
        .expect_exit(2)
        .stderr_has("--email");
    assert_eq!(env.state(), before, "refused edits change nothing");
    let v = env
        .cli([
            "--json",
            "user",
            "edit",
            "otro",
            "--username",
            "",
            "--mail-lang",
            "en",
        ])
        .ok()
        .json();
    assert_eq!(v["account"]["username"], Value::Null);
    assert_eq!(v["account"]["lang"], "en");
    // Nothing to change: said, and nothing audited.
    let n = env.audit_count("user.edit", None);
    let v = env
        .cli([
            "--json",
            "user",
            "edit",
            "830015428",
            "--type",
            "proveedor",
            "--mail-lang",
            "en",
        ])
        .ok()
        .json();
    assert_eq!(v["status"], "unchanged");
    assert_eq!(env.audit_count("user.edit", None), n);
}

fn delete_needs_yes_without_a_terminal(env: &mut Env) {
    env.add_cliente();
    let before = env.state();
    env.cli(["user", "delete", NIT])
        .expect_exit(2)
        .stderr_has("--yes");
    env.cli(["--json", "user", "delete", NIT]).expect_exit(2);
    assert_eq!(env.state(), before);
}

fn delete_leaves_no_personal_data_and_keeps_the_history(env: &mut Env) {
    let name = "Ana Lucía Gómez Zzyzx";
    env.add_user(
        "proveedor",
        NIT,
        EMAIL,
        &["--username", "anagomez", "--name", name, "--password-stdin"],
    )
    .ok();
    env.add_user("cliente", "800003122", "otra@example.co", &[])
        .ok();
    env.request("800003122", "otra@example.co").ok();
    env.request_as("proveedor", NIT, EMAIL).ok();
    env.login("proveedor", "anagomez", STRONG).ok();
    env.login_refused("proveedor", NIT, "no es la clave correcta");
    env.cli([
        "user",
        "disable",
        NIT,
        "--type",
        "proveedor",
        "--reason",
        &format!("pedido de {name}"),
    ])
    .ok();
    env.cli([
        "user",
        "edit",
        NIT,
        "--type",
        "proveedor",
        "--email",
        "vieja.direccion@example.co",
    ])
    .ok();
    // Its mail went to both addresses: the code, then the change's
    // notices to the old and the new one. The other account's code too.
    let before = env.mails();
    let theirs = before
        .iter()
        .filter(|m| m.to != ["otra@example.co"])
        .count();
    assert!(theirs >= 3, "{before:?}");
    // Beside them, files the sweep must leave: a note of the operator's
    // that names the address, a message being written, a symlink.
    std::fs::write(env.outbox.join("notas.txt"), format!("To: {EMAIL}\n")).unwrap();
    std::fs::write(env.outbox.join(".1-a.tmp"), format!("To: {EMAIL}\n")).unwrap();
    std::os::unix::fs::symlink(&before[0].file, env.outbox.join("enlace.eml")).unwrap();
    let v = env
        .cli([
            "--json",
            "user",
            "delete",
            NIT,
            "--type",
            "proveedor",
            "--yes",
        ])
        .ok()
        .json();
    assert_eq!(v["status"], "deleted");
    assert_eq!(v["outbox_removed"], theirs);
    assert_eq!(v["outbox_failed"], 0);
    // Its messages left the outbox; the other account's stayed, and so
    // did every file that is not a message we wrote.
    let after: Vec<Vec<String>> = read_mails(&env.outbox)
        .into_iter()
        .filter(|m| m.file.file_name().unwrap() != "enlace.eml")
        .map(|m| m.to)
        .collect();
    assert_eq!(after, [["otra@example.co"]]);
    for kept in ["notas.txt", ".1-a.tmp", "enlace.eml"] {
        assert!(
            std::fs::symlink_metadata(env.outbox.join(kept)).is_ok(),
            "{kept} was removed"
        );
    }
    let pseudonym = v["pseudonym"].as_str().unwrap().to_string();
    assert!(pseudonym.starts_with("borrado-"));
    env.cli(["user", "show", NIT, "--type", "proveedor"])
        .expect_exit(65);
    // Codes, mail and limits went with it; the other account stays.
    assert_eq!(env.status()["accounts"], 1);
    let codes = env.codes();
    assert!(codes.iter().all(|c| c["nit"] == "800003122"), "{codes:?}");
    assert!(env.queue().iter().all(|m| m["recipient"] != EMAIL));
    // The history stays, under the pseudonym, with the deletion itself.
    let ev = env.audit(&["--user", &pseudonym]);
    assert!(ev.len() >= 6, "{ev:?}");
    assert!(ev.iter().all(|e| e["subject"] == pseudonym.as_str()));
    assert_eq!(ev[0]["event"], "user.delete");
    // No NIT, email, username or name anywhere in the database.
    let dump = env.dump();
    for pii in [
        NIT,
        "900.102.030",
        EMAIL,
        "ana.gomez",
        "vieja.direccion",
        "anagomez",
        "Zzyzx",
        "Lucía",
    ] {
        assert!(!dump.contains(pii), "{pii:?} is still in the database");
    }
    assert!(dump.contains("800003122"), "the other account is untouched");
}

/// In words, the sweep's count only when there was something to remove,
/// and no warning when nothing failed.
fn a_deletion_says_how_many_of_its_messages_left_the_outbox(env: &mut Env) {
    env.add_cliente();
    env.add_user("cliente", "800003122", "otra@example.co", &[])
        .ok();
    env.request(NIT, EMAIL).ok();
    let r = env.cli(["user", "delete", NIT, "--yes"]).ok();
    r.stdout_has("borrada").stdout_has(&format!(
        "Mensajes suyos borrados de la bandeja de salida ({}): 1.",
        env.outbox.display()
    ));
    assert!(!r.stderr.contains("aviso"), "{}", r.stderr);
    assert!(env.mails().is_empty());
    // Nothing of hers in the outbox: nothing said about it.
    let r = env.cli(["user", "delete", "800003122", "--yes"]).ok();
    r.stdout_has("borrada");
    assert!(!r.stdout.contains("bandeja"), "{}", r.stdout);
    assert!(!r.stderr.contains("aviso"), "{}", r.stderr);
}

fn audit_filters_by_date_event_agent_and_account(env: &mut Env) {
    // Day 1 (2026-02-24 in Bogotá): an add and a request by test-agent.
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    // Day 2: logins by another agent, on two accounts.
    env.advance(24 * 3600);
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok();
    for _ in 0..3 {
        env.cli([
            "login",
            "--user",
            "800003122",
            "--password-stdin",
            "--agent",
            "luisa",
        ])
        .stdin("no tiene clave aún\n")
        .expect_exit(1);
        env.cli([
            "login",
            "--user",
            NIT,
            "--password-stdin",
            "--agent",
            "luisa",
        ])
        .stdin("no tiene clave aún\n")
        .expect_exit(1);
    }
    let all = env.audit(&[]).len();
    assert_eq!(all, 2 + 1 + 6 + 1);
    let day1 = env.audit(&["--since", "2026-02-24", "--until", "2026-02-24"]);
    assert_eq!(day1.len(), 3, "{day1:?}");
    let day2 = env.audit(&["--since", "2026-02-25"]);
    assert_eq!(day2.len(), 7);
    let rfc = env.audit(&["--until", "2026-02-24T18:46:39Z"]);
    assert_eq!(rfc.len(), 3, "RFC 3339: {rfc:?}");
    let excluded = env.audit(&["--until", "2026-02-24T18:46:38Z"]);
    assert!(excluded.is_empty(), "until is excluded: {excluded:?}");
    let logins = env.audit(&["--event", "login"]);
    assert_eq!(logins.len(), 6);
    let reset = env.audit(&["--event", "reset"]);
    assert_eq!(reset.len(), 1, "a group: reset.request, reset.confirm");
    // A typed --agent filters (RECUPERA_AGENT, set by the harness, does not).
    let luisa = env.audit(&["--agent", "luisa"]);
    assert_eq!(luisa.len(), 6);
    assert!(luisa.iter().all(|e| e["agent"] == "luisa"));
    // --user with more rows than --limit: the filter comes first.
    let mine = env.audit(&["--user", NIT, "--limit", "2"]);
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|e| e["subject"] == NIT), "{mine:?}");
    let mine_all = env.audit(&["--user", NIT]);
    assert_eq!(
        mine_all.len(),
        6,
        "add, request, mail, 3 logins: {mine_all:?}"
    );
    env.cli(["audit", "--since", "ayer"])
        .expect_exit(2)
        .stderr_has("AAAA-MM-DD");
    // A mistyped event is refused, not answered with an empty listing.
    env.cli(["audit", "--event", "user.dissable", "--format", "csv"])
        .expect_exit(2)
        .stderr_has("«user.dissable»")
        .stderr_has("user.disable, user.edit");
    for partial in ["use", "user.", "reset.conf"] {
        env.cli(["audit", "--event", partial]).expect_exit(2);
    }
}

fn audit_exports_csv_for_compliance(env: &mut Env) {
    env.add_cliente();
    env.cli([
        "user",
        "disable",
        NIT,
        "--reason",
        "=HYPERLINK(\"http://x\")",
        "--agent",
        "=cmd|' /C calc'!A0",
    ])
    .ok();
    let r = env.cli(["audit", "--format", "csv"]).ok();
    let mut rdr = csv::Reader::from_reader(r.stdout.as_bytes());
    let headers: Vec<String> = rdr.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        headers,
        [
            "id",
            "at",
            "agent",
            "account_id",
            "subject",
            "event",
            "outcome",
            "detail"
        ]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][5], "user.disable");
    assert_eq!(&rows[1][5], "user.add");
    assert_eq!(&rows[0][1], "2026-02-24T18:46:38Z");
    // A spreadsheet opening the report runs nothing an agent typed.
    assert!(rows[0][2].starts_with("'="), "{:?}", &rows[0][2]);
    // --json stays the JSON array.
    let j = env.cli(["audit", "--format", "csv", "--json"]).ok().json();
    assert_eq!(j.as_array().unwrap().len(), 2);
}

/// Another process reading the SQLite database (a long listing) keeps the
/// WAL from being folded in: a copy of the deleted account stays in the
/// `-wal` for now. The agent is told (and `files_scrubbed` says it), and
/// `codes purge` run after the reader is gone removes it.
#[test]
fn a_delete_while_another_process_reads_says_a_copy_remains_until_purge() {
    let env = Env::sqlite();
    let email = "zzyzx.borrable@example.co";
    env.add_user("cliente", NIT, email, &["--name", "Zzyzx Borrable"])
        .ok();
    env.add_user("cliente", "800003122", "otra@example.co", &[])
        .ok();
    let files = |env: &Env| {
        let mut all = Vec::new();
        for suffix in ["", "-wal"] {
            let p = format!("{}{suffix}", env.db_path.display());
            all.extend(std::fs::read(p).unwrap_or_default());
        }
        all
    };
    let found = |bytes: &[u8]| bytes.windows(email.len()).any(|w| w == email.as_bytes());
    // A reader on a snapshot taken before the deletion.
    let reader = env.db();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))
        .unwrap();
    let r = env
        .cli(["--json", "user", "delete", NIT, "--yes"])
        .env("RECUPERA_BUSY_TIMEOUT_MS", "300")
        .ok();
    assert_eq!(r.json()["files_scrubbed"], false);
    r.stderr_has("recupera codes purge");
    assert!(found(&files(&env)), "the copy the warning speaks of");
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    env.cli(["codes", "purge"]).ok();
    assert!(!found(&files(&env)), "no copy left after the purge");
}
