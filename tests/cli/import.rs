//! Bulk onboarding with files as spreadsheets write them: `user import`
//! and `user export`, on both engines.

use crate::engines;
use crate::util::*;
use serde_json::Value;

engines!(
    excel_file_with_bom_semicolons_spanish_headers_and_crlf,
    windows_1252_needs_the_flag_and_says_how,
    bcrypt_account_logs_in_with_its_old_password_and_is_rehashed,
    one_bad_row_writes_nothing_and_every_error_is_listed,
    dry_run_validates_and_writes_nothing,
    existing_accounts_fail_or_are_skipped,
    invitations_go_through_the_queue_to_a_working_confirm,
    export_then_import_gives_the_same_accounts,
    export_files_are_private_and_never_overwritten,
    plain_passwords_and_unknown_columns_are_refused,
    costly_hashes_are_refused_on_the_lines_excel_numbers,
);

fn write(env: &Env, name: &str, bytes: &[u8]) -> String {
    let p = env.root.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

/// The lines of an import's JSON error document, in order.
fn error_lines(doc: &Value) -> Vec<u64> {
    doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect()
}

/// `user list --json` without what differs between databases.
fn accounts(env: &Env) -> Vec<Value> {
    let mut v = env.cli(["--json", "user", "list"]).ok().json();
    for a in v.as_array_mut().unwrap() {
        let o = a.as_object_mut().unwrap();
        for k in [
            "id",
            "created_at",
            "password_changed_at",
            "last_login_at",
            "disabled_at",
        ] {
            o.remove(k);
        }
    }
    v.as_array().unwrap().clone()
}

fn excel_file_with_bom_semicolons_spanish_headers_and_crlf(env: &mut Env) {
    let file = write(
        env,
        "clientes.csv",
        "\u{FEFF}Tipo;NIT;Email;Nombre;Idioma\r\n\
         Cliente Factura;900.102.030-4;ana.gomez@example.co;Ana Gómez;es\r\n\
         PROVEEDOR;800003122;ventas@acme.co;\"Acme; S.A.S. \"\"la mejor\"\"\";en\r\n"
            .as_bytes(),
    );
    let v = env.cli(["--json", "user", "import", &file]).ok().json();
    assert_eq!(v["status"], "imported");
    assert_eq!(
        (v["created"].as_u64(), v["skipped"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(v["errors"], serde_json::json!([]));
    let ana = env.account(NIT);
    assert_eq!(ana["name"], "Ana Gómez");
    assert_eq!(ana["has_password"], false);
    let acme = env.account_of("proveedor", "800003122");
    assert_eq!(acme["name"], "Acme; S.A.S. \"la mejor\"");
    assert_eq!(acme["lang"], "en");
    // One audit event for the whole import, with its counts and the agent.
    let ev = env.audit(&["--event", "user.import"]);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["agent"], "test-agent");
    assert_eq!(ev[0]["detail"], "created=2 skipped=0 invited=0");
}

fn windows_1252_needs_the_flag_and_says_how(env: &mut Env) {
    // "José Muñoz" in Windows-1252, as an old Excel saves it.
    let mut bytes = b"nit,email,nombre\n900102030,jose@example.co,Jos".to_vec();
    bytes.extend([0xE9, b' ', b'M', b'u', 0xF1, b'o', b'z', b'\n']);
    let file = write(env, "viejo.csv", &bytes);
    let r = env.cli(["user", "import", &file]).expect_exit(65);
    r.stderr_has("CSV UTF-8")
        .stderr_has("--encoding windows-1252");
    assert_eq!(env.status()["accounts"], 0);
    env.cli(["user", "import", &file, "--encoding", "windows-1252"])
        .ok();
    assert_eq!(env.account(NIT)["name"], "José Muñoz");
}

fn bcrypt_account_logs_in_with_its_old_password_and_is_rehashed(env: &mut Env) {
    // What a PHP platform stores: password_hash($pw, PASSWORD_BCRYPT).
    let old = "la clave de siempre en php";
    let hash = bcrypt::hash_with_result(old, 10)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let file = write(
        env,
        "php.csv",
        format!("tipo,nit,email,password_hash\ncliente,{NIT},{EMAIL},{hash}\n").as_bytes(),
    );
    env.cli(["user", "import", &file]).ok();
    assert_eq!(env.account(NIT)["has_password"], true);
    // An unknown account and the bcrypt account refuse alike.
    let unknown = env.login_refused("cliente", "800003122", "otra clave cualquiera");
    let wrong = env.login_refused("cliente", NIT, "otra clave cualquiera");
    assert_eq!(
        (unknown.code, &unknown.stdout, &unknown.stderr),
        (wrong.code, &wrong.stdout, &wrong.stderr)
    );
    env.login("cliente", NIT, old).ok();
    let ev = env.audit(&["--event", "login"]);
    assert_eq!(ev[0]["detail"], "rehashed", "{ev:?}");
    // The stored hash is argon2id now, and the old password still works.
    let out = env.root.join("hashes.csv");
    env.cli(["user", "export", "--with-hashes", "--output"])
        .arg(out.to_str().unwrap())
        .ok();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("$argon2id$v=19$m=19456,t=2,p=1$"), "{text}");
    assert!(!text.contains("$2y$"));
    env.login("cliente", NIT, old).ok();
    let ev = env.audit(&["--event", "login"]);
    assert_eq!(ev[0]["detail"], Value::Null, "re-hashed only once");
}

fn one_bad_row_writes_nothing_and_every_error_is_listed(env: &mut Env) {
    env.empty_database();
    let before = env.state();
    let file = write(
        env,
        "malo.csv",
        b"nit;email;tipo;usuario\n\
          900102030;ana@example.co;cliente;\n\
          800.003.122-7;b@example.co;cliente;\n\
          830015428;no-es-un-email;cliente;\n\
          890900841;c@example.co;empleado;\n\
          899999034;d@example.co;proveedor;a b\n\
          900102030;e@example.co;cliente;\n",
    );
    let r = env.cli(["user", "import", &file]).expect_exit(65);
    for line in [
        "línea 3: nit: El dígito verificador de 800003122 es 6, no 7",
        "línea 4: email:",
        "línea 5: tipo:",
        "línea 6: usuario:",
        "línea 7: nit: la misma cuenta ya está en la línea 2",
    ] {
        r.stderr_has(line);
    }
    assert_eq!(env.state(), before, "nothing written");
    let j = env
        .cli(["--json", "user", "import", &file])
        .expect_exit(65)
        .json();
    assert_eq!(j["error"], "bad_data");
    assert_eq!(error_lines(&j), vec![3, 4, 5, 6, 7]);
    assert_eq!(j["errors"][1]["column"], "email");
}

fn dry_run_validates_and_writes_nothing(env: &mut Env) {
    env.add_cliente();
    let before = env.state();
    let file = write(
        env,
        "nuevos.csv",
        b"nit,email\n900102030,ana@example.co\n800003122,b@example.co\n830015428,c@example.co\n",
    );
    let v = env
        .cli([
            "--json",
            "user",
            "import",
            &file,
            "--dry-run",
            "--on-conflict",
            "skip",
            "--invite",
        ])
        .ok()
        .json();
    assert_eq!(v["status"], "dry_run");
    assert_eq!(
        (
            v["created"].as_u64(),
            v["skipped"].as_u64(),
            v["invited"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    assert_eq!(env.state(), before);
    assert!(env.mails().is_empty());
}

fn existing_accounts_fail_or_are_skipped(env: &mut Env) {
    env.add_cliente();
    env.add_user(
        "proveedor",
        "800003122",
        "v@acme.co",
        &["--username", "acme"],
    )
    .ok();
    let file = write(
        env,
        "mezcla.csv",
        b"tipo,nit,email\ncliente,900102030,ana@example.co\ncliente,830015428,c@example.co\n",
    );
    env.cli(["user", "import", &file])
        .expect_exit(65)
        .stderr_has("línea 2: nit: Ya existe una cuenta");
    assert_eq!(env.status()["accounts"], 2);
    let v = env
        .cli(["--json", "user", "import", &file, "--on-conflict", "skip"])
        .ok()
        .json();
    assert_eq!(
        (v["created"].as_u64(), v["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(env.status()["accounts"], 3);
    // An invalid row still fails a skip import; a username held by another
    // account is invalid.
    let file = write(
        env,
        "usuario.csv",
        b"tipo,nit,email,usuario\nproveedor,890900841,x@acme.co,ACME\ncliente,899999034,y@example.co,\n",
    );
    env.cli(["user", "import", &file, "--on-conflict", "skip"])
        .expect_exit(65)
        .stderr_has("línea 2: usuario:");
    assert_eq!(env.status()["accounts"], 3);
}

fn invitations_go_through_the_queue_to_a_working_confirm(env: &mut Env) {
    let file = write(
        env,
        "invitar.csv",
        format!("nit,email,nombre\n{NIT},{EMAIL},Ana\n800003122,b@example.co,Bea\n").as_bytes(),
    );
    let v = env
        .cli(["--json", "user", "import", &file, "--invite"])
        .ok()
        .json();
    assert_eq!(v["invited"], 2);
    // Queued, never sent inline.
    assert!(env.mails().is_empty());
    let q = env.queue();
    assert_eq!(q.len(), 2);
    assert!(
        q.iter()
            .all(|m| m["kind"] == "reset_code" && m["state"] == "queued")
    );
    // They count toward the request limits like any other code.
    env.request(NIT, EMAIL).ok();
    assert!(
        env.mails().is_empty(),
        "throttled: the invitation was the request"
    );
    assert_eq!(env.account(NIT)["requests_last_24h"], 1);
    let r = env.cli(["--json", "mail", "retry"]).ok().json();
    assert_eq!(r["report"]["sent"], 2);
    let mails = env.mails();
    assert_eq!(mails.len(), 2);
    let to_ana = mails.iter().find(|m| m.to == [EMAIL.to_string()]).unwrap();
    assert_eq!(to_ana.subject, "Confirmación de cambio de contraseña");
    let code = to_ana.code.clone().unwrap();
    env.confirm(NIT, &code, STRONG).ok();
    env.login("cliente", NIT, STRONG).ok();
}

fn export_then_import_gives_the_same_accounts(env: &mut Env) {
    env.add_user(
        "cliente",
        NIT,
        EMAIL,
        &["--name", "Ana; \"la jefa\" Gómez Ñúñez", "--password-stdin"],
    )
    .ok();
    env.add_user(
        "proveedor",
        "800003122",
        "v@acme.co",
        &["--username", "acme", "--mail-lang", "en"],
    )
    .ok();
    env.add_user(
        "proveedor",
        "830015428",
        "w@acme.co",
        &["--name", "Coma, punto y coma; sí"],
    )
    .ok();
    // A name and a reason a spreadsheet would run as formulas: written as
    // text (a leading apostrophe), read back as they were.
    env.add_user(
        "proveedor",
        "860518862",
        "x@acme.co",
        &["--name", "=HYPERLINK(\"http://evil/\";\"clic\")"],
    )
    .ok();
    env.cli([
        "user",
        "disable",
        "860518862",
        "--type",
        "proveedor",
        "--reason",
        "'@SUM(1;2)",
    ])
    .ok();
    // Disabled accounts stay disabled, with their reason (or none).
    env.cli([
        "user",
        "disable",
        "830015428",
        "--type",
        "proveedor",
        "--reason",
        "cuenta comprometida, ticket 4521",
    ])
    .ok();
    env.cli(["user", "disable", "800003122", "--type", "proveedor"])
        .ok();
    let original = accounts(env);
    assert_eq!(original.iter().filter(|a| a["disabled"] == true).count(), 3);
    for format in ["csv", "jsonl"] {
        let out = env.root.join(format!("export.{format}"));
        env.cli([
            "user",
            "export",
            "--with-hashes",
            "--format",
            format,
            "--output",
        ])
        .arg(out.to_str().unwrap())
        .ok();
        let mut other = Env::new(env.engine).unwrap();
        if format == "csv" {
            let text = std::fs::read_to_string(&out).unwrap();
            assert!(
                text.contains("\"'=HYPERLINK(\"\"http://evil/\"\";\"\"clic\"\")\""),
                "{text}"
            );
            assert!(text.contains(",''@SUM(1;2)"), "{text}");
            other.cli(["user", "import", out.to_str().unwrap()]).ok();
        } else {
            // JSON lines back into CSV through the same columns is not an
            // import format: check the lines instead.
            let text = std::fs::read_to_string(&out).unwrap();
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 4);
            // JSON lines carry the values as they are.
            assert_eq!(lines[3]["nombre"], "=HYPERLINK(\"http://evil/\";\"clic\")");
            assert_eq!(lines[0]["nombre"], "Ana; \"la jefa\" Gómez Ñúñez");
            assert_eq!(lines[1]["usuario"], "acme");
            assert_eq!(lines[1]["nombre"], Value::Null);
            assert_eq!(lines[1]["estado"], "deshabilitada");
            assert_eq!(lines[1]["motivo"], Value::Null);
            assert_eq!(lines[2]["motivo"], "cuenta comprometida, ticket 4521");
            assert_eq!(lines[0]["estado"], "activa");
            continue;
        }
        assert_eq!(accounts(&other), original);
        other.login("cliente", NIT, STRONG).ok();
        other.advance(0);
    }
    // Without hashes, to stdout: UTF-8, no BOM, `,`, quoted where needed.
    let r = env.cli(["user", "export"]).ok();
    assert!(
        r.stdout
            .starts_with("tipo,nit,email,usuario,nombre,idioma,estado,motivo\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\"Ana; \"\"la jefa\"\" Gómez Ñúñez\""));
    assert!(!r.stdout.contains("argon2"));
}

#[cfg(unix)]
fn export_files_are_private_and_never_overwritten(env: &mut Env) {
    use std::os::unix::fs::PermissionsExt;
    env.add_cliente_with_password();
    let out = env.root.join("cuentas.csv");
    let path = out.to_str().unwrap();
    env.cli(["user", "export", "--output", path]).ok();
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::write(&out, "no tocar").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    env.cli(["user", "export", "--output", path])
        .expect_exit(2)
        .stderr_has("--force");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "no tocar");
    // --force puts a new private file in its place; it never writes into
    // the existing one, which keeps its owner (one made by another user in
    // a shared folder would hand them the hashes). A second name for that
    // file (a hard link) sees none of the export.
    let other_name = env.root.join("otro-nombre.csv");
    std::fs::hard_link(&out, &other_name).unwrap();
    env.cli([
        "user",
        "export",
        "--with-hashes",
        "--output",
        path,
        "--force",
    ])
    .ok();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains(NIT) && text.contains("$argon2id$"), "{text}");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the new file is private");
    assert_eq!(std::fs::read_to_string(&other_name).unwrap(), "no tocar");
    let mode = std::fs::metadata(&other_name).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the old file is left as it was");
    let left: Vec<_> = std::fs::read_dir(&env.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".recupera-export-"))
        .collect();
    assert!(left.is_empty(), "no temporary file left: {left:?}");
    // --force overwrites a file, nothing else: not through a symlink (the
    // file it points at keeps its text and mode), not a pipe.
    let victim = env.root.join("victim.txt");
    std::fs::write(&victim, "no tocar").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = env.root.join("link.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let fifo = env.root.join("pipe.csv");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path inside the test's temporary folder.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    for target in [&link, &fifo] {
        env.cli(["user", "export", "--with-hashes", "--force", "--output"])
            .arg(target.to_str().unwrap())
            .expect_exit(2)
            .stderr_has("no es un archivo normal");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "no tocar");
    let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    let mode = std::fs::metadata(&fifo).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // Hashes never go to stdout.
    let r = env.cli(["user", "export", "--with-hashes"]).expect_exit(2);
    assert!(r.stdout.is_empty());
    r.stderr_has("--output");
}

fn plain_passwords_and_unknown_columns_are_refused(env: &mut Env) {
    let file = write(
        env,
        "claves.csv",
        b"nit;email;Contrase\xC3\xB1a\n900102030;ana@example.co;MiClaveSecreta2024\n",
    );
    let r = env.cli(["user", "import", &file]).expect_exit(65);
    r.stderr_has("contraseñas en claro");
    assert!(!r.stderr.contains("MiClaveSecreta2024") && !r.stdout.contains("MiClaveSecreta2024"));
    let file = write(
        env,
        "raro.csv",
        b"nit,email,telefono,ciudad\n900102030,a@example.co,1,2\n",
    );
    env.cli(["user", "import", &file])
        .expect_exit(65)
        .stderr_has("«telefono», «ciudad»");
    // A missing file is a usage error naming it.
    env.cli(["user", "import", "no-existe.csv"])
        .expect_exit(2)
        .stderr_has("no-existe.csv");
    // From standard input.
    env.cli(["--json", "user", "import", "-"])
        .stdin("nit,email\n900102030,ana@example.co\n")
        .ok();
    assert_eq!(env.status()["accounts"], 1);
}

/// A hash whose cost would tie the machine up at every login (4 GiB of
/// argon2 memory, bcrypt cost 31) is refused at import, and the lines of a
/// CRLF file are numbered as the spreadsheet numbers them.
fn costly_hashes_are_refused_on_the_lines_excel_numbers(env: &mut Env) {
    let argon = "$argon2id$v=19$m=4194304,t=3,p=1$gWWkX41Dsfy9J98n3qkWQA$\
                 5BHXh02M9E0O4t7BsngF+HGtFm+5yK/ETdW+odC7KCY";
    let bcrypt = "$2y$31$XKARCbTGnRb6wjsgfZEH6.FIPgUIn.hIaOEkpWwbEff1DvrMEVHqe";
    let file = write(
        env,
        "caro.csv",
        format!(
            "nit;email;password_hash\r\n\
             900102030;ana@example.co;\r\n\
             830015428;eva@example.co;{argon}\r\n\
             800003122;luis@example.co;{bcrypt}\r\n"
        )
        .as_bytes(),
    );
    env.empty_database();
    let before = env.state();
    let r = env.cli(["user", "import", &file]).expect_exit(65);
    r.stderr_has("línea 3: password_hash: el hash cuesta más de lo que se admite")
        .stderr_has("línea 4: password_hash:");
    assert!(!r.stderr.contains("gWWkX41D") && !r.stderr.contains("XKARCbTG"));
    assert_eq!(env.state(), before, "nothing written");
    let j = env
        .cli(["--json", "--lang", "en", "user", "import", &file])
        .expect_exit(65)
        .json();
    assert_eq!(error_lines(&j), vec![3, 4]);
    assert!(
        j["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("the hash costs more than accepted"),
        "{j}"
    );
}
