//! Email: the manual's messages and the two ways to deliver them.
//!
//! Invariants:
//! - A message has exactly one recipient: the address stored on the account,
//!   never the one typed at the prompt.
//! - The code appears in clear only in the message body, built in memory
//!   right before delivery; nothing here logs or stores it.
//! - Without `RECUPERA_SMTP_URL`, messages are `.eml` files in an outbox
//!   folder (mode 0700, created on first use). A message is written under a
//!   temporary name and renamed into place, so a reader (or a full disk)
//!   never sees half a message. A symlinked outbox, or one others can write
//!   that we do not own, is refused; one we own is tightened to 0700.
//! - With it, delivery is SMTP over TLS (`smtps://`, or `smtp://…?tls=required`
//!   for STARTTLS); plain-text SMTP is allowed only to a loopback address,
//!   because credentials and codes would otherwise cross the network in clear.
//!   Every connection has a timeout, so a dead server never hangs a command.
//! - What a server answers is stored and shown only made visible and cut
//!   (`i18n::quote_long`): a reply cannot clear a screen or retitle a window.
//! - What a message says of the code's expiry comes from the code's own
//!   expiry, not from today's setting.

pub mod queue;

use crate::clock::colombia;
use crate::domain::account::AccountType;
use crate::domain::email::Email;
use crate::domain::nit::Nit;
use crate::error::{Error, Result};
use crate::i18n::{Lang, M, tf, tl, type_label_in};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_FROM: &str = "recupera <no-reply@recupera.invalid>";
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Transport {
    Outbox(PathBuf),
    Smtp(Box<Smtp>),
}

/// An SMTP server, and how long one delivery to it may take in all. The
/// transport's timeout bounds each wait for the server; a server that
/// keeps answering a little at a time (a continuation line a second)
/// never trips it, so the whole conversation has a deadline too:
/// `DEADLINE_TIMES` times the timeout. Past it the delivery counts as
/// failed for now (the server is taken as unavailable) and the message
/// stays queued.
pub struct Smtp {
    pub transport: SmtpTransport,
    pub deadline: Duration,
}

/// A delivery's whole deadline, in timeouts.
pub const DEADLINE_TIMES: u32 = 3;

impl Smtp {
    /// `f` on the transport, on a thread of its own, waited for until the
    /// deadline (inline when no thread can be started: no deadline then).
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SmtpTransport) -> std::result::Result<T, lettre::transport::smtp::Error>
        + Send
        + 'static,
    ) -> std::result::Result<T, SendError> {
        if crate::ops::spawn_refused() {
            return f(&self.transport).map_err(smtp_send_error);
        }
        let t = self.transport.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().spawn(move || {
            let _ = tx.send(f(&t));
        });
        if spawned.is_err() {
            return Err(SendError::temporary(
                "no thread for the delivery".to_string(),
            ));
        }
        match rx.recv_timeout(self.deadline) {
            Ok(r) => r.map_err(smtp_send_error),
            // The thread is left to the process's exit.
            Err(_) => Err(SendError::temporary(tf(
                M::SmtpDeadline,
                &[("secs", &self.deadline.as_secs())],
            ))),
        }
    }
}

pub struct Mailer {
    pub transport: Transport,
    pub from: Mailbox,
    /// Footer line under every message; plain text, escaped for HTML.
    pub footer: Option<String>,
}

/// How SMTP was configured, parsed from `RECUPERA_SMTP_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`smtps://`, port 465).
    Wrapper,
    /// STARTTLS, refused if the server does not offer it (`tls=required`).
    StartTls,
    /// No TLS: loopback only.
    Plain,
}

use crate::store::location::is_loopback;

impl SmtpConfig {
    /// Parses `smtps://user:pass@host[:port]` or
    /// `smtp://host[:port][?tls=required]`; credentials are percent-decoded.
    pub fn parse(url: &str) -> Result<SmtpConfig> {
        let bad = |e: &dyn std::fmt::Display| Error::Config(tf(M::ConfigSmtpUrl, &[("err", e)]));
        let u = url::Url::parse(url).map_err(|e| bad(&e))?;
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad(&"no host"))?
            .to_string();
        let tls = u
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_string());
        let (security, default_port) = match (u.scheme(), tls.as_deref()) {
            ("smtps", None | Some("wrapper") | Some("required")) => (Security::Wrapper, 465),
            ("smtp", Some("required") | Some("starttls")) => (Security::StartTls, 587),
            ("smtp", None | Some("none") | Some("off")) => (Security::Plain, 25),
            ("smtp", Some("opportunistic")) => (Security::Plain, 25),
            (scheme, tls) => {
                return Err(bad(&format!(
                    "scheme «{scheme}», tls={}",
                    tls.unwrap_or("-")
                )));
            }
        };
        if security == Security::Plain && !is_loopback(&host) {
            return Err(Error::Config(tf(M::ConfigSmtpPlain, &[("host", &host)])));
        }
        let decode = |s: &str| -> Result<String> {
            percent_encoding_decode(s).ok_or_else(|| bad(&"credentials are not UTF-8"))
        };
        let user = if u.username().is_empty() {
            None
        } else {
            Some(decode(u.username())?)
        };
        let password = u.password().map(decode).transpose()?;
        Ok(SmtpConfig {
            host,
            port: u.port().unwrap_or(default_port),
            security,
            user,
            password,
        })
    }

    pub fn transport(&self, timeout: Duration, extra_ca: Option<&Path>) -> Result<Smtp> {
        let host = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut b = SmtpTransport::builder_dangerous(host.clone())
            .port(self.port)
            .timeout(Some(timeout));
        let params = || -> Result<TlsParameters> {
            let mut pb = TlsParameters::builder(host.clone());
            if let Some(path) = extra_ca {
                let pem = crate::input::read_small_file(path, 1024 * 1024).map_err(|e| {
                    Error::Config(tf(
                        M::ConfigSmtpCa,
                        &[
                            ("path", &path.display()),
                            ("err", &crate::i18n::os_error(&e)),
                        ],
                    ))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    Error::Config(tf(
                        M::ConfigSmtpCa,
                        &[("path", &path.display()), ("err", &e)],
                    ))
                })?;
                pb = pb.add_root_certificate(cert);
            }
            pb.build()
                .map_err(|e| Error::Config(tf(M::ConfigSmtpUrl, &[("err", &e)])))
        };
        b = match self.security {
            Security::Wrapper => b.tls(Tls::Wrapper(params()?)),
            Security::StartTls => b.tls(Tls::Required(params()?)),
            Security::Plain => b.tls(Tls::None),
        };
        if let Some(user) = &self.user {
            b = b.credentials(Credentials::new(
                user.clone(),
                self.password.clone().unwrap_or_default(),
            ));
        }
        Ok(Smtp {
            transport: b.build(),
            deadline: timeout * DEADLINE_TIMES,
        })
    }
}

fn percent_encoding_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The parts of a reset message.
pub struct ResetMail<'a> {
    pub to: &'a Email,
    pub lang: Lang,
    pub nit: &'a Nit,
    pub code: &'a str,
    pub requested_at: i64,
    /// The code's own expiry: what the message says comes from it.
    pub expires_at: i64,
    /// When the message is built (a retry is later than the request).
    pub now: i64,
}

/// To the owner when the recovery channel is suspended.
pub struct SuspendedMail<'a> {
    pub to: &'a Email,
    pub lang: Lang,
    pub kind: AccountType,
    pub nit: &'a Nit,
    pub at: i64,
    pub until: i64,
}

/// After `user edit --email`: to the old address (with the new one
/// masked) and to the new one.
pub struct EmailChangedMail<'a> {
    pub to: &'a Email,
    pub lang: Lang,
    pub kind: AccountType,
    pub nit: &'a Nit,
    pub new_masked: &'a str,
    pub to_old: bool,
    pub at: i64,
}

/// "12Hrs" as the manual writes it while whole hours remain (at least
/// two), else minutes: never more than what is really left.
pub fn time_left(secs: i64, lang: Lang) -> String {
    let secs = secs.max(0);
    if secs >= 2 * 3600 {
        tl(M::MailLeftHours, lang, &[("hours", &(secs / 3600))])
    } else if secs < 120 {
        M::MailLeftOneMinute.text(lang).to_string()
    } else {
        tl(M::MailLeftMinutes, lang, &[("minutes", &(secs / 60))])
    }
}

/// The parts of a "password changed" notice.
pub struct ChangedMail<'a> {
    pub to: &'a Email,
    pub lang: Lang,
    pub kind: AccountType,
    pub nit: &'a Nit,
    pub changed_at: i64,
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Mailer {
    fn footer(&self, lang: Lang) -> String {
        self.footer
            .clone()
            .unwrap_or_else(|| M::MailFooterDefault.text(lang).to_string())
    }

    fn envelope(&self, to: &Email, subject: &str) -> Result<lettre::message::MessageBuilder> {
        let addr: lettre::Address = to.ascii().parse().map_err(|e| crate::internal!("{e}"))?;
        // RFC 5322's Message-ID (filters mark mail without one): random,
        // at the sender's domain, so that it names no machine of ours.
        let id: u128 = {
            use rand::RngExt;
            rand::rng().random()
        };
        let message_id = format!("<{id:032x}@{}>", self.from.email.domain());
        Ok(Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, addr))
            .subject(subject)
            .message_id(Some(message_id)))
    }

    /// Step 04 of the manual: "Confirmación de cambio de contraseña".
    pub fn reset_message(&self, m: &ResetMail<'_>) -> Result<Message> {
        let lang = m.lang;
        let subject = M::MailSubject.text(lang);
        let title = M::MailTitle.text(lang);
        let intro = M::MailIntro.text(lang);
        let expiry = tl(
            M::MailExpiry,
            lang,
            &[
                ("left", &time_left(m.expires_at - m.now, lang)),
                ("date", &colombia(m.expires_at)),
            ],
        );
        let ignore = M::MailIgnore.text(lang);
        let details = M::MailDetails.text(lang);
        let date = colombia(m.requested_at);
        let footer = self.footer(lang);
        let (l_nit, l_code, l_date) = (
            M::MailNit.text(lang),
            M::MailCode.text(lang),
            M::MailDate.text(lang),
        );
        let nit = m.nit.as_str();
        let plain = format!(
            "{title}\n\n{intro}\n\n{expiry}\n\n{ignore}\n\n{details}\n\n\
             {l_nit}: {nit}\n{l_code}: {code}\n{l_date}: {date}\n\n-- \n{footer}\n",
            code = m.code,
        );
        let html = format!(
            "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
             <body style=\"font-family:Arial,Helvetica,sans-serif;color:#222\">\
             <h2>{title}</h2><p>{intro}</p><p><strong>{expiry}</strong></p><p>{ignore}</p>\
             <h3>{details}</h3><table>\
             <tr><td>{l_nit}:</td><td>{nit}</td></tr>\
             <tr><td>{l_code}:</td><td><strong style=\"font-family:monospace;font-size:1.4em;letter-spacing:0.2em\">{code}</strong></td></tr>\
             <tr><td>{l_date}:</td><td>{date}</td></tr></table>\
             <hr><p style=\"font-size:0.8em;color:#666\">{footer}</p></body></html>",
            lang = lang.as_str(),
            subject = html_escape(subject),
            title = html_escape(title),
            intro = html_escape(intro),
            expiry = html_escape(&expiry),
            ignore = html_escape(ignore),
            details = html_escape(details),
            code = html_escape(m.code),
            footer = html_escape(&footer),
        );
        self.envelope(m.to, subject)?
            .multipart(MultiPart::alternative_plain_html(plain, html))
            .map_err(|e| crate::internal!("{e}"))
    }

    /// After a successful reset: a notice with no secrets.
    pub fn changed_message(&self, m: &ChangedMail<'_>) -> Result<Message> {
        let lang = m.lang;
        let subject = M::MailChangedSubject.text(lang);
        let body = tl(
            M::MailChangedBody,
            lang,
            &[
                ("type", &type_label_in(m.kind, lang)),
                ("nit", &m.nit.display()),
                ("date", &colombia(m.changed_at)),
            ],
        );
        self.notice(m.to, lang, subject, &body, M::MailChangedWarn.text(lang))
    }

    /// A notice: a title, one paragraph, a warning line, the footer.
    fn notice(
        &self,
        to: &Email,
        lang: Lang,
        subject: &str,
        body: &str,
        warn: &str,
    ) -> Result<Message> {
        let footer = self.footer(lang);
        let plain = format!("{subject}\n\n{body}\n\n{warn}\n\n-- \n{footer}\n");
        let html = format!(
            "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{s}</title></head>\
             <body style=\"font-family:Arial,Helvetica,sans-serif;color:#222\"><h2>{s}</h2>\
             <p>{b}</p><p><strong>{w}</strong></p><hr><p style=\"font-size:0.8em;color:#666\">{f}</p></body></html>",
            lang = lang.as_str(),
            s = html_escape(subject),
            b = html_escape(body),
            w = html_escape(warn),
            f = html_escape(&footer),
        );
        self.envelope(to, subject)?
            .multipart(MultiPart::alternative_plain_html(plain, html))
            .map_err(|e| crate::internal!("{e}"))
    }

    /// The recovery channel was suspended after repeated failed codes.
    pub fn suspended_message(&self, m: &SuspendedMail<'_>) -> Result<Message> {
        let lang = m.lang;
        let body = tl(
            M::MailSuspendedBody,
            lang,
            &[
                ("type", &type_label_in(m.kind, lang)),
                ("nit", &m.nit.display()),
                ("date", &colombia(m.at)),
                ("until", &colombia(m.until)),
            ],
        );
        self.notice(
            m.to,
            lang,
            M::MailSuspendedSubject.text(lang),
            &body,
            M::MailSuspendedWarn.text(lang),
        )
    }

    /// The registered email was changed (to the old or the new address).
    pub fn email_changed_message(&self, m: &EmailChangedMail<'_>) -> Result<Message> {
        let lang = m.lang;
        let args: [(&str, &dyn std::fmt::Display); 4] = [
            ("type", &type_label_in(m.kind, lang)),
            ("nit", &m.nit.display()),
            ("date", &colombia(m.at)),
            ("email", &m.new_masked),
        ];
        if m.to_old {
            self.notice(
                m.to,
                lang,
                M::MailEmailChangedSubject.text(lang),
                &tl(M::MailEmailChangedOld, lang, &args),
                M::MailEmailChangedWarn.text(lang),
            )
        } else {
            self.notice(
                m.to,
                lang,
                M::MailEmailChangedSubject.text(lang),
                &tl(M::MailEmailChangedNew, lang, &args),
                M::MailEmailChangedNewWarn.text(lang),
            )
        }
    }

    /// Delivers one message. The error is a one-line description for the
    /// queue's `last_error` (it never contains the message body).
    pub fn send(&self, msg: &Message) -> std::result::Result<(), SendError> {
        match &self.transport {
            Transport::Outbox(dir) => write_eml(dir, &msg.formatted()),
            Transport::Smtp(t) => {
                let msg = msg.clone();
                t.run(move |s| s.send(&msg).map(|_| ()))
            }
        }
    }

    /// Delivers bytes already formatted as a message (the background
    /// delivery of `reset request`), to one recipient.
    pub fn send_raw(&self, to: &str, bytes: &[u8]) -> std::result::Result<(), SendError> {
        let to: lettre::Address = to
            .parse()
            .map_err(|e| SendError::temporary(format!("{e}")))?;
        let envelope = lettre::address::Envelope::new(Some(self.from.email.clone()), vec![to])
            .map_err(|e| SendError::temporary(e.to_string()))?;
        match &self.transport {
            Transport::Outbox(dir) => write_eml(dir, bytes),
            Transport::Smtp(t) => {
                let bytes = bytes.to_vec();
                t.run(move |s| s.send_raw(&envelope, &bytes).map(|_| ()))
            }
        }
    }
}

fn smtp_send_error(e: lettre::transport::smtp::Error) -> SendError {
    SendError {
        credentials: is_credentials_error(&e),
        permanent: e.is_permanent(),
        text: smtp_error(&e),
    }
}

/// Writes a message into the outbox: a temporary name first, then a rename,
/// so a full disk or a crash never leaves a partial `.eml`. Names sort by
/// time of writing.
fn write_eml(dir: &Path, bytes: &[u8]) -> std::result::Result<(), SendError> {
    use std::io::Write;
    let fail = |e: &dyn std::fmt::Display| {
        SendError::temporary(format!("{}: {e}", crate::i18n::shown_path(dir)))
    };
    // An outbox refused as it is (a symlink, a file, a shared or foreign
    // folder) is a setting to fix, not an outage: exit 78 at `mail retry`.
    // What the system refuses (a full disk, a path through a file) may
    // pass, and counts as an outage.
    ensure_private_dir(dir).map_err(|e| match e.raw_os_error() {
        Some(_) => fail(&crate::i18n::os_error(&e)),
        None => SendError {
            credentials: true,
            ..fail(&e)
        },
    })?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let rand: u64 = {
        use rand::RngExt;
        rand::rng().random()
    };
    let name = format!("{stamp:024}-{rand:016x}");
    let tmp = dir.join(format!(".{name}.tmp"));
    let done = dir.join(format!("{name}.eml"));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &done)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&crate::i18n::os_error(&e)));
    }
    Ok(())
}

/// What `user delete` did in the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxSweep {
    /// Messages to the account removed.
    pub removed: u64,
    /// Messages to the account that could not be removed (or `.eml` files
    /// that could not be read to tell).
    pub failed: u64,
}

/// Removes from the outbox every message addressed to one of `to` (the
/// addresses an account's mail went to): a deleted account's personal
/// data (its address, its name in the greeting, its NIT) must not stay in
/// the files we wrote either. A message is ours to remove when its `To:`
/// header is exactly one of those addresses, as `Mailer` writes it (the
/// domain in ASCII). Only regular `.eml` files directly in the folder are
/// looked at; symlinks, folders and files being written (`.NAME.tmp`)
/// are left, and an outbox that is a symlink or missing is not looked
/// into.
pub fn sweep_outbox(dir: &Path, to: &[String]) -> OutboxSweep {
    let mut sweep = OutboxSweep::default();
    let wanted: std::collections::BTreeSet<String> = to
        .iter()
        .map(|a| {
            Email::parse(a)
                .map(|e| e.ascii())
                .unwrap_or_else(|_| a.clone())
        })
        .collect();
    if wanted.is_empty() {
        return sweep;
    }
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_dir()) {
        return sweep;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return sweep;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let is_eml = name
            .to_str()
            .is_some_and(|n| n.ends_with(".eml") && !n.starts_with('.'));
        if !is_eml || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        match eml_recipient(&path) {
            Ok(Some(r)) if wanted.contains(&r) => match std::fs::remove_file(&path) {
                Ok(()) => sweep.removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => sweep.failed += 1,
            },
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => sweep.failed += 1,
        }
    }
    sweep
}

/// The address of a message file's `To:` header (folded lines joined; a
/// `Name <addr>` form gives `addr`), read from its header block only.
fn eml_recipient(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::{BufRead, Read};
    // Not through a symlink, and never waiting on a FIFO put in the
    // file's place since the folder was listed: only a regular file is
    // read.
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = match open.open(path) {
        Ok(f) => f,
        // ELOOP: a symlink now stands there; not ours to read.
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !f.metadata()?.is_file() {
        return Ok(None);
    }
    let mut reader = std::io::BufReader::new(f.take(64 * 1024));
    let mut to: Option<String> = None;
    let mut in_to = false;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if in_to && let Some(t) = to.as_mut() {
                t.push_str(line.trim());
            }
            continue;
        }
        in_to = false;
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("to")
        {
            if to.is_some() {
                // Two `To:` headers: not a message we wrote.
                return Ok(None);
            }
            to = Some(value.trim().to_string());
            in_to = true;
        }
    }
    Ok(to.map(|t| match (t.rfind('<'), t.rfind('>')) {
        (Some(a), Some(b)) if a < b => t[a + 1..b].trim().to_string(),
        _ => t,
    }))
}

/// Why a delivery failed.
#[derive(Debug, Clone)]
pub struct SendError {
    /// One line, for the queue's `last_error` and the operator.
    pub text: String,
    /// The server refused our credentials (or offers no way to use them),
    /// or the outbox folder is refused: a configuration problem, not an
    /// outage.
    pub credentials: bool,
    /// A permanent (5xx) refusal of this message, such as a recipient the
    /// server rejects: the next message may still go.
    pub permanent: bool,
}

impl SendError {
    fn temporary(text: String) -> SendError {
        SendError {
            text: crate::i18n::quote_long(&text),
            credentials: false,
            permanent: false,
        }
    }
}

fn is_credentials_error(e: &lettre::transport::smtp::Error) -> bool {
    use lettre::transport::smtp::response::{Category, Detail, Severity};
    if let Some(code) = e.status() {
        // 535 authentication failed, 530 authentication required,
        // 534 mechanism too weak, 538 encryption required for auth.
        return code.severity == Severity::PermanentNegativeCompletion
            && code.category == Category::Unspecified3
            && matches!(
                code.detail,
                Detail::Zero | Detail::Four | Detail::Five | Detail::Eight
            );
    }
    e.to_string().contains("authentication mechanism")
}

/// lettre's errors can be long and nested: the chain on one line, made
/// visible (a server's reply may carry escape sequences) and cut.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    crate::i18n::quote_long(&s.replace(['\r', '\n'], " "))
}

/// The outbox folder: created 0700 if missing. An existing one must be a
/// real folder (not a symlink); one others can write into (a shared folder
/// such as /tmp, sticky or not) is refused and left as it is, even ours;
/// one we own that others can only open is tightened to 0700 (and said
/// so); one we do not own that others can write is refused.
#[cfg(unix)]
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(std::io::Error::other(
            crate::i18n::t(M::OutboxSymlink).to_string(),
        )),
        Ok(meta) if !meta.is_dir() => Err(std::io::Error::other(
            crate::i18n::t(M::OutboxNotDir).to_string(),
        )),
        Ok(meta) => {
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            let mode = meta.mode() & 0o777;
            if meta.uid() == me {
                // World-writable or sticky: shared on purpose; taking it
                // over would break every other user of it.
                if meta.mode() & 0o1002 != 0 {
                    return Err(std::io::Error::other(tf(
                        M::OutboxShared,
                        &[("mode", &format!("{:o}", meta.mode() & 0o7777))],
                    )));
                }
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
                    crate::ui::warn(&tf(
                        M::OutboxTightened,
                        &[
                            ("path", &crate::i18n::shown_path(dir)),
                            ("mode", &format!("{mode:o}")),
                        ],
                    ));
                }
                Ok(())
            } else if mode & 0o022 != 0 {
                Err(std::io::Error::other(tf(
                    M::OutboxForeign,
                    &[("mode", &format!("{mode:o}"))],
                )))
            } else {
                Ok(())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

pub fn parse_from(s: &str) -> Result<Mailbox> {
    // What was given is shown made visible (a line feed in it would forge
    // a line of its own in a terminal or a cron log).
    if s.contains(['\r', '\n', ',', ';']) {
        let shown = crate::i18n::quote(s);
        return Err(Error::Config(tf(M::ConfigMailFrom, &[("err", &shown)])));
    }
    s.parse::<Mailbox>().map_err(|e| {
        let shown = crate::i18n::visible(&e.to_string());
        Error::Config(tf(M::ConfigMailFrom, &[("err", &shown)]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eml(dir: &Path, name: &str, head: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("{head}\r\n\r\nTo: body@example.co\r\n")).unwrap();
        p
    }

    #[test]
    fn a_message_file_is_known_by_its_to_header_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cases = [
            (
                "From: a <x@y.co>\r\nTo: ana@example.co\r\nSubject: s",
                Some("ana@example.co"),
            ),
            ("to:   Ana Gómez <ana@example.co>  ", Some("ana@example.co")),
            (
                "To:\r\n ana@example.co\r\nSubject: s",
                Some("ana@example.co"),
            ),
            ("Subject: no recipient", None),
            // A body line is not a header.
            ("Subject: s", None),
            ("To: a@example.co\r\nTo: b@example.co", None),
            ("X-To: ana@example.co", None),
            // Brackets the wrong way round are no `Name <addr>`.
            ("To: odd> <x", Some("odd> <x")),
        ];
        for (i, (head, want)) in cases.iter().enumerate() {
            let p = eml(d, &format!("{i}.eml"), head);
            assert_eq!(eml_recipient(&p).unwrap().as_deref(), *want, "{head:?}");
        }
        // A long header block is read up to 64 KiB, not less.
        let pad = "a".repeat(2000);
        let p = eml(
            d,
            "long.eml",
            &format!("X-Pad: {pad}\r\nTo: ana@example.co"),
        );
        assert_eq!(
            eml_recipient(&p).unwrap().as_deref(),
            Some("ana@example.co")
        );
        // Read through no symlink, and a FIFO is not waited on.
        let link = d.join("link.eml");
        std::os::unix::fs::symlink(d.join("0.eml"), &link).unwrap();
        assert_eq!(eml_recipient(&link).unwrap(), None);
        let fifo = d.join("fifo.eml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // On a thread: a read that waited for a writer would hang here.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(eml_recipient(&fifo).unwrap()));
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(got, Ok(None), "a FIFO was waited on");
        // Bytes that are not UTF-8 in a header are no error.
        let p = d.join("raw.eml");
        std::fs::write(&p, b"Subject: \xff\xfe\nTo: ana@example.co\n\n").unwrap();
        assert_eq!(
            eml_recipient(&p).unwrap().as_deref(),
            Some("ana@example.co")
        );
    }

    #[test]
    fn the_sweep_removes_only_messages_to_the_addresses_given() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mine = eml(d, "1-a.eml", "To: ana@example.co");
        // The domain as the message has it: in ASCII.
        let idn = eml(d, "2-b.eml", "To: ana@xn--caf-dma.co");
        let other = eml(d, "3-c.eml", "To: Ana@example.co");
        let tmp = eml(d, ".4-d.tmp", "To: ana@example.co");
        let hidden = eml(d, ".5-e.eml", "To: ana@example.co");
        let note = eml(d, "notas.txt", "To: ana@example.co");
        std::fs::create_dir(d.join("6-f.eml")).unwrap();
        // A link to a message to her, elsewhere: the link is not ours.
        let elsewhere = tempfile::tempdir().unwrap();
        let target = eml(elsewhere.path(), "1-a.eml", "To: ana@example.co");
        let link = d.join("7-g.eml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let to = ["ana@example.co".to_string(), "ana@café.co".to_string()];
        let sweep = sweep_outbox(d, &to);
        assert_eq!(
            sweep,
            OutboxSweep {
                removed: 2,
                failed: 0
            }
        );
        assert!(!mine.exists() && !idn.exists());
        for kept in [
            &other,
            &tmp,
            &hidden,
            &note,
            &d.join("6-f.eml"),
            &link,
            &target,
        ] {
            assert!(std::fs::symlink_metadata(kept).is_ok(), "{kept:?}");
        }
        // Nothing asked for, nothing looked at; no outbox, nothing done.
        assert_eq!(sweep_outbox(d, &[]), OutboxSweep::default());
        assert_eq!(sweep_outbox(&d.join("none"), &to), OutboxSweep::default());
        // An outbox reached through a symlink is not looked into.
        let real = tempfile::tempdir().unwrap();
        let kept = eml(real.path(), "1-a.eml", "To: ana@example.co");
        let via = d.join("via");
        std::os::unix::fs::symlink(real.path(), &via).unwrap();
        assert_eq!(sweep_outbox(&via, &to), OutboxSweep::default());
        assert!(kept.exists());
    }

    #[test]
    fn smtp_urls() {
        let c = SmtpConfig::parse("smtps://ana%40x.co:p%3Ass@mail.example.com").unwrap();
        assert_eq!(c.security, Security::Wrapper);
        assert_eq!(c.port, 465);
        assert_eq!(c.user.as_deref(), Some("ana@x.co"));
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        let c = SmtpConfig::parse("smtp://mail.example.com:587?tls=required").unwrap();
        assert_eq!((c.security, c.port), (Security::StartTls, 587));
        let c = SmtpConfig::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((c.security, c.port), (Security::Plain, 2525));
        assert!(SmtpConfig::parse("smtp://[::1]:2525").is_ok());
        assert!(SmtpConfig::parse("smtp://localhost").is_ok());
        for bad in [
            "smtp://mail.example.com",
            "smtp://mail.example.com?tls=opportunistic",
            "http://mail.example.com",
            "not a url",
            "smtp://10.0.0.1:25",
        ] {
            assert!(
                matches!(SmtpConfig::parse(bad), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_encoding_decode("a%20b").unwrap(), "a b");
        assert_eq!(percent_encoding_decode("%C3%B1").unwrap(), "ñ");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(html_escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
    /// A mailer writing into `dir`, with or without a footer of its own.
    fn mailer(dir: &Path, footer: Option<&str>) -> Mailer {
        Mailer {
            transport: Transport::Outbox(dir.to_path_buf()),
            from: parse_from(DEFAULT_FROM).unwrap(),
            footer: footer.map(str::to_string),
        }
    }

    /// Recipient, subject, plain text and HTML of a message, decoded (line
    /// ends as `\n`).
    fn read(bytes: &[u8]) -> (String, String, String, String) {
        let m = crate::ops::kit::decode(bytes);
        let lf = |s: &str| s.replace("\r\n", "\n");
        let html = m.html.expect("an HTML part");
        (m.to, m.subject, lf(&m.text), lf(&html))
    }

    fn outbox(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    const NOW: i64 = 1_796_000_000;

    #[test]
    fn time_left_says_whole_hours_from_two_then_minutes_never_more() {
        for (secs, es, en) in [
            (12 * 3600, "12Hrs", "12 hours"),
            (2 * 3600 + 3599, "2Hrs", "2 hours"),
            (2 * 3600, "2Hrs", "2 hours"),
            (2 * 3600 - 1, "119 minutos", "119 minutes"),
            (3600, "60 minutos", "60 minutes"),
            (150, "2 minutos", "2 minutes"),
            (119, "1 minuto", "1 minute"),
            (59, "1 minuto", "1 minute"),
            (0, "1 minuto", "1 minute"),
            (-30, "1 minuto", "1 minute"),
        ] {
            assert_eq!(time_left(secs, Lang::Es), es, "{secs} s");
            assert_eq!(time_left(secs, Lang::En), en, "{secs} s");
        }
    }

    #[test]
    fn a_reset_message_carries_the_code_its_expiry_and_the_footer() {
        let dir = tempfile::tempdir().unwrap();
        let to = Email::parse("ana@example.co").unwrap();
        let nit = Nit::parse("900123456").unwrap();
        let m = mailer(dir.path(), None);
        let build = || {
            m.reset_message(&ResetMail {
                to: &to,
                lang: Lang::Es,
                nit: &nit,
                code: "Ab3<z",
                requested_at: NOW - 600,
                // A retry an hour after the request: what is left, not 12 h.
                expires_at: NOW + 3 * 3600 + 59,
                now: NOW,
            })
            .unwrap()
        };
        let msg = build();
        let (rcpt, subject, text, html) = read(&msg.formatted());
        assert_eq!(rcpt, "ana@example.co");
        assert_eq!(subject, M::MailSubject.text(Lang::Es));
        // A Message-ID of its own, at the sender's domain (no host name).
        let id_of = |raw: Vec<u8>| -> String {
            let raw = String::from_utf8(raw).unwrap();
            let line = raw.lines().find(|l| l.starts_with("Message-ID: ")).unwrap();
            line["Message-ID: ".len()..].to_string()
        };
        let id = id_of(msg.formatted());
        let domain = format!("@{}>", m.from.email.domain());
        assert!(
            id.starts_with('<') && id.ends_with(&domain) && id.len() > 34,
            "{id}"
        );
        assert_ne!(id_of(build().formatted()), id, "one per message");
        assert!(text.contains("Código: Ab3<z\n"), "{text}");
        assert!(text.contains(&format!("NIT: {}\n", nit.as_str())), "{text}");
        assert!(text.contains("caducará en 3Hrs ("), "{text}");
        assert!(text.contains(&colombia(NOW + 3 * 3600 + 59)), "{text}");
        let asked = format!("{}: {}\n", M::MailDate.text(Lang::Es), colombia(NOW - 600));
        assert!(text.contains(&asked), "{text}");
        assert!(
            text.ends_with(&format!("-- \n{}\n", M::MailFooterDefault.text(Lang::Es))),
            "{text}"
        );
        // In the HTML the code is escaped, never markup.
        assert!(html.contains("Ab3&lt;z</strong>"), "{html}");
        assert!(!html.contains("Ab3<z"), "{html}");
        assert!(html.contains(M::MailFooterDefault.text(Lang::Es)), "{html}");
        // Delivered to the outbox as built.
        m.send(&msg).unwrap();
        let files = outbox(dir.path());
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read(&files[0]).unwrap(), msg.formatted());
    }

    #[test]
    fn a_footer_of_our_own_replaces_the_default_and_is_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let to = Email::parse("ana@example.co").unwrap();
        let nit = Nit::parse("900123456").unwrap();
        let m = mailer(dir.path(), Some("Soporte <soporte@example.co> & cía"));
        let msg = m
            .changed_message(&ChangedMail {
                to: &to,
                lang: Lang::En,
                kind: AccountType::Proveedor,
                nit: &nit,
                changed_at: NOW,
            })
            .unwrap();
        let (_, subject, text, html) = read(&msg.formatted());
        assert_eq!(subject, M::MailChangedSubject.text(Lang::En));
        assert!(
            text.ends_with("-- \nSoporte <soporte@example.co> & cía\n"),
            "{text}"
        );
        assert!(
            !text.contains(M::MailFooterDefault.text(Lang::En)),
            "{text}"
        );
        assert!(
            html.contains("Soporte &lt;soporte@example.co&gt; &amp; cía"),
            "{html}"
        );
    }

    #[test]
    fn each_notice_says_its_own_thing_and_no_code() {
        let dir = tempfile::tempdir().unwrap();
        let to = Email::parse("ana@example.co").unwrap();
        let nit = Nit::parse("900123456").unwrap();
        let m = mailer(dir.path(), None);
        let (kind, lang) = (AccountType::Cliente, Lang::Es);
        let changed = m
            .changed_message(&ChangedMail {
                to: &to,
                lang,
                kind,
                nit: &nit,
                changed_at: NOW,
            })
            .unwrap();
        let suspended = m
            .suspended_message(&SuspendedMail {
                to: &to,
                lang,
                kind,
                nit: &nit,
                at: NOW,
                until: NOW + 86_400,
            })
            .unwrap();
        let email = |to_old| {
            m.email_changed_message(&EmailChangedMail {
                to: &to,
                lang,
                kind,
                nit: &nit,
                new_masked: "b***@example.co",
                to_old,
                at: NOW,
            })
            .unwrap()
        };
        let (old, new) = (email(true), email(false));
        let texts: Vec<_> = [&changed, &suspended, &old, &new]
            .iter()
            .map(|msg| read(&msg.formatted()))
            .collect();
        let expect = [
            (M::MailChangedSubject, M::MailChangedWarn),
            (M::MailSuspendedSubject, M::MailSuspendedWarn),
            (M::MailEmailChangedSubject, M::MailEmailChangedWarn),
            (M::MailEmailChangedSubject, M::MailEmailChangedNewWarn),
        ];
        for ((rcpt, subject, text, html), (s, w)) in texts.iter().zip(expect) {
            assert_eq!(rcpt, "ana@example.co");
            assert_eq!(subject, s.text(lang));
            assert!(text.contains(w.text(lang)), "{text}");
            assert!(text.contains(&nit.display()), "{text}");
            assert!(html.contains(&html_escape(w.text(lang))), "{html}");
            assert!(!text.contains("Código"), "{text}");
        }
        assert!(
            texts[1].2.contains(&colombia(NOW + 86_400)),
            "{}",
            texts[1].2
        );
        // The old address is told where the mail goes now; the new one is
        // told it is the address now.
        assert!(texts[2].2.contains("a b***@example.co."), "{}", texts[2].2);
        assert!(
            texts[3]
                .2
                .starts_with(&format!("{}\n\nEsta dirección", texts[3].1)),
            "{}",
            texts[3].2
        );
    }

    #[test]
    fn the_outbox_gets_whole_messages_only() {
        let dir = tempfile::tempdir().unwrap();
        let box_ = dir.path().join("outbox");
        let m = mailer(&box_, None);
        m.send_raw("ana@example.co", b"Subject: x\r\n\r\nhola\r\n")
            .unwrap();
        let files = outbox(&box_);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "eml");
        assert_eq!(
            std::fs::read(&files[0]).unwrap(),
            b"Subject: x\r\n\r\nhola\r\n"
        );
        // A recipient that is no address: nothing written.
        assert!(m.send_raw("not an address", b"x").is_err());
        assert_eq!(outbox(&box_).len(), 1);
        // A folder that is a file: an error naming it.
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let e = mailer(&file, None)
            .send_raw("ana@example.co", b"x")
            .unwrap_err();
        assert!(e.text.contains("a-file"), "{}", e.text);
        assert!(e.credentials && !e.permanent, "a setting to fix: {e:?}");
        // A path through a file: what the system says, as an outage.
        let e = mailer(&file.join("outbox"), None)
            .send_raw("ana@example.co", b"x")
            .unwrap_err();
        assert!(!e.credentials && !e.permanent, "{e:?}");
        assert!(e.text.contains("no es una carpeta"), "{}", e.text);
    }

    /// An SMTP server that speaks from a script, on as many connections as
    /// it is given: its greeting, then for each command the reply of the
    /// first entry whose prefix the command has (upper-cased), else what a
    /// willing server says (`354` to `DATA`, `250` to the rest).
    /// Returns its port. The library's tests use it for the replies a real
    /// server gives only on a bad day; `tests/cli/smtp.rs` has a real one.
    pub(super) fn scripted_smtp(script: &'static [(&'static str, &'static str)]) -> u16 {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let session = move |stream: std::net::TcpStream| -> std::io::Result<()> {
            let mut w = stream.try_clone()?;
            let mut r = BufReader::new(stream);
            w.write_all(b"220 test ESMTP\r\n")?;
            let mut in_data = false;
            let mut line = String::new();
            while r.read_line(&mut line)? > 0 {
                let cmd = std::mem::take(&mut line);
                if in_data {
                    if cmd == ".\r\n" {
                        in_data = false;
                        w.write_all(b"250 queued\r\n")?;
                    }
                    continue;
                }
                let upper = cmd.to_ascii_uppercase();
                let usual = match upper.get(..4) {
                    Some("DATA") => "354 go ahead\r\n",
                    Some("QUIT") => "221 bye\r\n",
                    _ => "250 ok\r\n",
                };
                let reply = script
                    .iter()
                    .find(|(p, _)| upper.starts_with(p))
                    .map_or(usual, |(_, r)| r);
                in_data = upper.starts_with("DATA") && reply.starts_with("354");
                w.write_all(reply.as_bytes())?;
                if upper.starts_with("QUIT") {
                    break;
                }
            }
            Ok(())
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || session(stream));
            }
        });
        port
    }

    /// Plain SMTP to the scripted server on `port` (loopback), with or
    /// without credentials.
    pub(super) fn smtp_to(port: u16, login: bool) -> Transport {
        let auth = if login { "ana:pw@" } else { "" };
        let config = SmtpConfig::parse(&format!("smtp://{auth}127.0.0.1:{port}")).unwrap();
        Transport::Smtp(Box::new(
            config.transport(Duration::from_secs(10), None).unwrap(),
        ))
    }

    fn smtp_send(port: u16, login: bool) -> std::result::Result<(), SendError> {
        let m = Mailer {
            transport: smtp_to(port, login),
            from: parse_from(DEFAULT_FROM).unwrap(),
            footer: None,
        };
        m.send_raw("ana@example.co", b"Subject: x\r\n\r\nhola\r\n")
    }

    /// A server that never finishes its greeting but never falls silent
    /// either (a continuation line every 50 ms) trips no read timeout: the
    /// delivery's deadline ends it, as a failure for now.
    #[test]
    fn a_server_that_drips_forever_meets_the_deadline() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                std::thread::spawn(move || {
                    while s.write_all(b"220-still here\r\n").is_ok() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                });
            }
        });
        let mut transport = smtp_to(port, false);
        if let Transport::Smtp(t) = &mut transport {
            assert_eq!(t.deadline, Duration::from_secs(10) * DEADLINE_TIMES);
            t.deadline = Duration::from_millis(400);
        }
        let m = Mailer {
            transport,
            from: parse_from(DEFAULT_FROM).unwrap(),
            footer: None,
        };
        let started = std::time::Instant::now();
        let e = m
            .send_raw("ana@example.co", b"Subject: x\r\n\r\nhola\r\n")
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(!e.permanent && !e.credentials, "{e:?}");
        assert!(e.text.contains("no terminó la entrega"), "{e:?}");
    }

    #[test]
    fn smtp_refusals_are_told_apart() {
        const EHLO_AUTH: (&str, &str) = ("EHLO", "250-test\r\n250 AUTH PLAIN LOGIN\r\n");
        // Accepted.
        let port = scripted_smtp(&[EHLO_AUTH]);
        smtp_send(port, true).unwrap();
        // Our credentials refused: a configuration problem.
        let port = scripted_smtp(&[EHLO_AUTH, ("AUTH", "535 5.7.8 bad credentials\r\n")]);
        let e = smtp_send(port, true).unwrap_err();
        assert!(e.credentials && e.permanent, "{e:?}");
        assert!(e.text.contains("bad credentials"), "{}", e.text);
        // Credentials, and a server that offers no way to use them.
        let port = scripted_smtp(&[("EHLO", "250 test\r\n")]);
        let e = smtp_send(port, true).unwrap_err();
        assert!(e.credentials, "{e:?}");
        // This recipient refused for good: the next message may still go.
        let port = scripted_smtp(&[("RCPT", "550 5.1.1 no such user\r\n")]);
        let e = smtp_send(port, false).unwrap_err();
        assert!(e.permanent && !e.credentials, "{e:?}");
        // Try later.
        let port = scripted_smtp(&[("MAIL", "451 4.3.0 try later\r\n")]);
        let e = smtp_send(port, false).unwrap_err();
        assert!(!e.permanent && !e.credentials, "{e:?}");
        // A reply that would move the cursor is shown made visible, on one line.
        let port = scripted_smtp(&[("MAIL", "451 \x1b[2Jgone\r\n")]);
        let e = smtp_send(port, false).unwrap_err();
        assert!(
            !e.text.contains('\x1b') && !e.text.contains('\n'),
            "{}",
            e.text
        );
        assert!(e.text.contains("gone"), "{}", e.text);
        // Nobody listening: temporary, and not about credentials.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = smtp_send(port, true).unwrap_err();
        assert!(!e.permanent && !e.credentials, "{e:?}");
    }

    #[cfg(unix)]
    #[test]
    fn the_outbox_folder_must_be_ours_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // Missing: made, with its parents, 0700.
        let made = dir.path().join("a/b");
        ensure_private_dir(&made).unwrap();
        assert_eq!(mode(&made), 0o700);
        // Ours and open to others: tightened.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o750)).unwrap();
        ensure_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
        // Ours but shared, as /tmp is (sticky, or writable by all): refused
        // and left as it is.
        for shared in [0o1777, 0o777, 0o1700] {
            let dir = dir.path().join(format!("shared{shared:o}"));
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(shared)).unwrap();
            let e = ensure_private_dir(&dir).unwrap_err();
            assert!(e.to_string().contains(&format!("{shared:o}")), "{e}");
            let left = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
            assert_eq!(left, shared);
        }
        // Ours and private already: left as it is (0700 with the owner's
        // bits only; 0500 stays 0500).
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        ensure_private_dir(&ro).unwrap();
        assert_eq!(mode(&ro), 0o500);
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A symlink (even to a good folder) and a file: refused.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&made, &link).unwrap();
        let e = ensure_private_dir(&link).unwrap_err();
        assert_eq!(e.to_string(), crate::i18n::t(M::OutboxSymlink));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = ensure_private_dir(&file).unwrap_err();
        assert_eq!(e.to_string(), crate::i18n::t(M::OutboxNotDir));
        // A path through a file: the system's error, nothing made.
        assert!(ensure_private_dir(&file.join("sub")).is_err());
    }

    /// A folder someone else owns is used as it is, unless others can
    /// write into it. As root, the folders are given to `nobody`; as
    /// anyone else, `/usr` (root's, 0755) and `/tmp` (root's, 1777) are
    /// someone else's already (and are never changed: the refusal or the
    /// acceptance comes before any change).
    #[cfg(unix)]
    #[test]
    fn a_folder_of_someone_else_is_used_only_if_others_cannot_write_it() {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::tempdir().unwrap();
        let foreign = |name: &str, mode: u32| -> std::path::PathBuf {
            if !root {
                return PathBuf::from(if mode & 0o022 == 0 { "/usr" } else { "/tmp" });
            }
            let p = dir.path().join(name);
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid C string naming the folder just made.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
            p
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let theirs = foreign("theirs", 0o755);
        let before = mode(&theirs);
        ensure_private_dir(&theirs).unwrap();
        assert_eq!(mode(&theirs), before, "not ours to change");
        for (name, m) in [("group-writable", 0o775), ("world-writable", 0o757)] {
            let open = foreign(name, m);
            let before = mode(&open);
            let e = ensure_private_dir(&open).unwrap_err();
            assert!(
                e.to_string().contains(&format!("{:o}", before & 0o777)),
                "{e}"
            );
            assert_eq!(mode(&open), before);
        }
    }

    #[test]
    fn a_from_line_is_one_mailbox() {
        // Refused, and shown with its line feed and escape made visible.
        let e = parse_from("Sop\u{1b}[2J\norte <s@x.co>\nX")
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e:?}");
        assert!(e.contains("\\u{a}") && e.contains("\\u{1b}"), "{e:?}");
        assert_eq!(
            parse_from("Soporte <soporte@example.co>")
                .unwrap()
                .email
                .to_string(),
            "soporte@example.co"
        );
        for bad in [
            "a@example.co\r\nBcc: b@example.co",
            "a@example.co\nX: y",
            "a@example.co, b@example.co",
            "a@example.co; b@example.co",
            "not a mailbox",
        ] {
            assert!(matches!(parse_from(bad), Err(Error::Config(_))), "{bad:?}");
        }
    }
}
