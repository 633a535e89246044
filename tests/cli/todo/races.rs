//! Concurrent processes on one database file.

use crate::util::*;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn twenty_processes_confirm_one_code_exactly_one_wins() {
    let env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let passwords: Vec<String> = (0..20)
        .map(|i| format!("{STRONG} numero {i} de veinte"))
        .collect();
    // Start all, then feed their stdin together so they race for real.
    let mut children: Vec<_> = passwords
        .iter()
        .map(|_| {
            let mut c = env.command(&[
                "reset",
                "confirm",
                "--user",
                NIT,
                "--code",
                &code,
                "--password-stdin",
            ]);
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for (child, pw) in children.iter_mut().zip(&passwords) {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{pw}\n").as_bytes()).unwrap();
    }
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| wait_with_deadline(c, Duration::from_secs(120)))
        .collect();
    let winners: Vec<usize> = outs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.status.code() == Some(0))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one success");
    let refusal = "No se pudo actualizar la contraseña";
    for (i, o) in outs.iter().enumerate() {
        if i == winners[0] {
            continue;
        }
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(refusal), "uniform refusal, got: {stderr}");
    }
    // Consistent state: the code is used, the winner's password is the one
    // set, one success in the audit log, every attempt recorded.
    assert_eq!(
        env.count("SELECT COUNT(*) FROM codes WHERE state = 'used'"),
        1
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM codes WHERE state = 'pending'"),
        0
    );
    env.login("cliente", NIT, &passwords[winners[0]]).ok();
    assert_eq!(
        env.count("SELECT COUNT(*) FROM audit WHERE event = 'reset.confirm' AND outcome = 'ok'"),
        1
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM audit WHERE event = 'reset.confirm'"),
        20
    );
    let integrity: String = env
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn mixed_operations_from_four_processes_lose_nothing() {
    let env = Env::new();
    // A: wrong confirmations; B: wrong logins; C: right logins; D: requests.
    env.add_user("cliente", "900102030", "a@example.co", &[])
        .ok();
    env.run(
        &[
            "user",
            "add",
            "--nit",
            "800003122",
            "--email",
            "b@example.co",
            "--password-stdin",
        ],
        Some(&format!("{STRONG}\n")),
    )
    .ok();
    env.run(
        &[
            "user",
            "add",
            "--nit",
            "830015428",
            "--email",
            "c@example.co",
            "--password-stdin",
        ],
        Some(&format!("{STRONG}\n")),
    )
    .ok();
    env.add_user("cliente", "890900841", "d@example.co", &[])
        .ok();

    type Op = (Vec<String>, Option<String>);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let worker_ops = || -> Vec<Op> {
        let mut ops: Vec<Op> = Vec::new();
        for i in 0..4 {
            ops.push((
                s(&[
                    "reset",
                    "confirm",
                    "--user",
                    "900102030",
                    "--code",
                    "zzzzz",
                    "--password-stdin",
                ]),
                Some(format!("{STRONG}\n")),
            ));
            if i < 3 {
                ops.push((
                    s(&[
                        "reset",
                        "request",
                        "--nit",
                        "890900841",
                        "--email",
                        "d@example.co",
                    ]),
                    None,
                ));
            }
            if i < 2 {
                ops.push((
                    s(&["login", "--user", "830015428", "--password-stdin"]),
                    Some(format!("{STRONG}\n")),
                ));
                ops.push((s(&["codes", "purge"]), None));
            }
        }
        ops.push((
            s(&["login", "--user", "800003122", "--password-stdin"]),
            Some("frase equivocada de verdad\n".into()),
        ));
        ops
    };
    let results: Vec<Vec<Run>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let env = &env;
                let ops = worker_ops();
                scope.spawn(move || {
                    ops.iter()
                        .map(|(args, stdin)| {
                            let args: Vec<&str> = args.iter().map(String::as_str).collect();
                            env.run(&args, stdin.as_deref())
                        })
                        .collect::<Vec<Run>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let runs: Vec<&Run> = results.iter().flatten().collect();
    assert_eq!(runs.len(), 4 * 12);
    for r in &runs {
        assert!(r.code == 0 || r.code == 1, "exit {}: {}", r.code, r.stderr);
        let lower = r.stderr.to_lowercase();
        assert!(
            !lower.contains("locked") && !lower.contains("busy") && !lower.contains("ocupada"),
            "{}",
            r.stderr
        );
    }
    // No lost update: every counted attempt is there.
    assert_eq!(
        env.count("SELECT failed_confirms FROM accounts WHERE nit = '900102030'"),
        16
    );
    assert_eq!(
        env.count("SELECT failed_logins FROM accounts WHERE nit = '800003122'"),
        4
    );
    assert_eq!(
        env.count("SELECT failed_logins FROM accounts WHERE nit = '830015428'"),
        0
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM audit WHERE event = 'login' AND outcome = 'ok'"),
        8
    );
    // Twelve requests at the same instant: exactly one code, one mail.
    assert_eq!(env.count("SELECT COUNT(*) FROM reset_requests"), 1);
    assert_eq!(env.mails().len(), 1);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM audit WHERE event = 'reset.request'"),
        12
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM audit WHERE event = 'reset.confirm'"),
        16
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM audit WHERE event = 'login'"),
        12
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM audit WHERE event = 'codes.purge'"),
        8
    );
}
