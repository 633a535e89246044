//! A real SMTP server for the mail tests: `mailin-embedded` on 127.0.0.1,
//! a random port, optionally with STARTTLS (certificates made by a test CA)
//! and AUTH PLAIN/LOGIN. It keeps what it receives so tests can parse it.

#![allow(dead_code)]

use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};
use std::io;
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    pub user: Option<String>,
}

#[derive(Clone)]
struct Collect {
    inbox: Arc<Mutex<Vec<Received>>>,
    /// A recipient refused with 550 at RCPT.
    reject: Option<String>,
    creds: Option<(String, String)>,
    current: Option<Received>,
    user: Option<String>,
}

impl Collect {
    fn check(&mut self, user: &str, password: &str) -> Response {
        match &self.creds {
            Some((u, p)) if u == user && p == password => {
                self.user = Some(user.to_string());
                AUTH_OK
            }
            _ => INVALID_CREDENTIALS,
        }
    }
}

impl Handler for Collect {
    fn rcpt(&mut self, to: &str) -> Response {
        if self.reject.as_deref() == Some(to) {
            mailin_embedded::response::NO_MAILBOX
        } else {
            OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            mail_from: from.to_string(),
            rcpt_to: to.to_vec(),
            data: Vec::new(),
            user: self.user.clone(),
        });
        OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(c) = self.current.as_mut() {
            c.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(c) = self.current.take() {
            self.inbox.lock().unwrap().push(c);
        }
        OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.check(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check(user, password)
    }

    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        OK
    }
}

pub struct SmtpServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
}

/// Paths of a test CA and a `localhost` certificate it signed.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "recupera test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("localhost.pem"),
        key: dir.join("localhost.key"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, leaf.pem()).unwrap();
    std::fs::write(&pki.key, leaf_key.serialize_pem()).unwrap();
    pki
}

/// A port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static CRYPTO: Once = Once::new();

impl SmtpServer {
    /// Starts a server on `port` (0: any free one). It runs until the test
    /// binary exits.
    /// A plain server that refuses one recipient (550 at RCPT).
    pub fn start_rejecting(port: u16, reject: &str) -> SmtpServer {
        Self::start_with(port, None, None, Some(reject.to_string()))
    }

    pub fn start(port: u16, tls: Option<&Pki>, creds: Option<(&str, &str)>) -> SmtpServer {
        Self::start_with(port, tls, creds, None)
    }

    fn start_with(
        port: u16,
        tls: Option<&Pki>,
        creds: Option<(&str, &str)>,
        reject: Option<String>,
    ) -> SmtpServer {
        CRYPTO.call_once(|| {
            // Two rustls providers are compiled into the test binary; the
            // server side needs one chosen for the process.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let handler = Collect {
            inbox: inbox.clone(),
            reject,
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
            current: None,
            user: None,
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut server = Server::new(handler);
        server.with_name("localhost").with_tcp_listener(listener);
        if let Some(p) = tls {
            server
                .with_ssl(SslConfig::Trusted {
                    cert_path: p.cert.display().to_string(),
                    key_path: p.key.display().to_string(),
                    chain_path: p.ca.display().to_string(),
                })
                .unwrap();
        }
        if creds.is_some() {
            server
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { port, inbox }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }
}
