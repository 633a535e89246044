//! Email: the manual's messages and the two ways to deliver them.
//!
//! Invariants:
//! - A message has exactly one recipient: the address stored on the account,
//!   never the one typed at the prompt.
//! - The code appears in clear only in the message body, built in memory
//!   right before delivery; nothing here logs or stores it.
//! - Without `RECUPERA_SMTP_URL`, messages are `.eml` files in an outbox
//!   folder (mode 0700, created on first use).
//! - With it, delivery is SMTP over TLS (`smtps://`, or `smtp://…?tls=required`
//!   for STARTTLS); plain-text SMTP is allowed only to a loopback address,
//!   because credentials and codes would otherwise cross the network in clear.
//!   Every connection has a timeout, so a dead server never hangs a command.

use crate::clock::colombia;
use crate::domain::account::AccountType;
use crate::domain::email::Email;
use crate::domain::nit::Nit;
use crate::error::{Error, Result};
use crate::i18n::{Lang, M, tf, tl};
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{FileTransport, SmtpTransport, Transport as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_FROM: &str = "recupera <no-reply@recupera.invalid>";
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(10);

pub enum Transport {
    Outbox(PathBuf),
    Smtp(Box<SmtpTransport>),
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

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

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

    pub fn transport(&self, timeout: Duration, extra_ca: Option<&Path>) -> Result<SmtpTransport> {
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
                let pem = std::fs::read(path).map_err(|e| {
                    Error::Config(tf(
                        M::ConfigSmtpCa,
                        &[("path", &path.display()), ("err", &e)],
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
        Ok(b.build())
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
    pub ttl_hours: i64,
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
        let addr: lettre::Address = to
            .as_str()
            .parse()
            .map_err(|e| Error::Other(anyhow::anyhow!("{e}")))?;
        Ok(Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, addr))
            .subject(subject))
    }

    /// Step 04 of the manual: "Confirmación de cambio de contraseña".
    pub fn reset_message(&self, m: &ResetMail<'_>) -> Result<Message> {
        let lang = m.lang;
        let subject = M::MailSubject.text(lang);
        let title = M::MailTitle.text(lang);
        let intro = M::MailIntro.text(lang);
        let expiry = tl(M::MailExpiry, lang, &[("hours", &m.ttl_hours)]);
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
            .map_err(|e| Error::Other(anyhow::anyhow!("{e}")))
    }

    /// After a successful reset: a notice with no secrets.
    pub fn changed_message(&self, m: &ChangedMail<'_>) -> Result<Message> {
        let lang = m.lang;
        let subject = M::MailChangedSubject.text(lang);
        let body = tl(
            M::MailChangedBody,
            lang,
            &[
                ("type", &m.kind.label(lang)),
                ("nit", &m.nit.display()),
                ("date", &colombia(m.changed_at)),
            ],
        );
        let warn = M::MailChangedWarn.text(lang);
        let footer = self.footer(lang);
        let plain = format!("{subject}\n\n{body}\n\n{warn}\n\n-- \n{footer}\n");
        let html = format!(
            "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{s}</title></head>\
             <body style=\"font-family:Arial,Helvetica,sans-serif;color:#222\"><h2>{s}</h2>\
             <p>{b}</p><p><strong>{w}</strong></p><hr><p style=\"font-size:0.8em;color:#666\">{f}</p></body></html>",
            lang = lang.as_str(),
            s = html_escape(subject),
            b = html_escape(&body),
            w = html_escape(warn),
            f = html_escape(&footer),
        );
        self.envelope(m.to, subject)?
            .multipart(MultiPart::alternative_plain_html(plain, html))
            .map_err(|e| Error::Other(anyhow::anyhow!("{e}")))
    }

    /// Delivers one message. The error is a one-line description for the
    /// queue's `last_error` (it never contains the message body).
    pub fn send(&self, msg: &Message) -> std::result::Result<(), SendError> {
        match &self.transport {
            Transport::Outbox(dir) => {
                ensure_private_dir(dir).map_err(|e| SendError {
                    text: format!("{}: {e}", dir.display()),
                    credentials: false,
                    permanent: false,
                })?;
                FileTransport::new(dir)
                    .send(msg)
                    .map(|_| ())
                    .map_err(|e| SendError {
                        text: e.to_string(),
                        credentials: false,
                        permanent: false,
                    })
            }
            Transport::Smtp(t) => t.send(msg).map(|_| ()).map_err(|e| SendError {
                credentials: is_credentials_error(&e),
                permanent: e.is_permanent(),
                text: smtp_error(&e),
            }),
        }
    }

    /// Delivers bytes already formatted as a message (the background
    /// delivery of `reset request`), to one recipient.
    pub fn send_raw(&self, to: &str, bytes: &[u8]) -> std::result::Result<(), SendError> {
        let fail = |text: String| SendError {
            text,
            credentials: false,
            permanent: false,
        };
        let to: lettre::Address = to.parse().map_err(|e| fail(format!("{e}")))?;
        let envelope = lettre::address::Envelope::new(Some(self.from.email.clone()), vec![to])
            .map_err(|e| fail(e.to_string()))?;
        match &self.transport {
            Transport::Outbox(dir) => {
                ensure_private_dir(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
                FileTransport::new(dir)
                    .send_raw(&envelope, bytes)
                    .map(|_| ())
                    .map_err(|e| fail(e.to_string()))
            }
            Transport::Smtp(t) => t
                .send_raw(&envelope, bytes)
                .map(|_| ())
                .map_err(|e| SendError {
                    credentials: is_credentials_error(&e),
                    permanent: e.is_permanent(),
                    text: smtp_error(&e),
                }),
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone)]
pub struct SendError {
    /// One line, for the queue's `last_error` and the operator.
    pub text: String,
    /// The server refused our credentials (or offers no way to use them):
    /// a configuration problem, not an outage.
    pub credentials: bool,
    /// A permanent (5xx) refusal of this message, such as a recipient the
    /// server rejects: the next message may still go.
    pub permanent: bool,
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

/// lettre's errors can be long and nested; keep the chain on one line.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s.replace(['\r', '\n'], " ")
}

#[cfg(unix)]
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

pub fn parse_from(s: &str) -> Result<Mailbox> {
    if s.contains(['\r', '\n', ',', ';']) {
        return Err(Error::Config(tf(M::ConfigMailFrom, &[("err", &s)])));
    }
    s.parse::<Mailbox>()
        .map_err(|e| Error::Config(tf(M::ConfigMailFrom, &[("err", &e)])))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
