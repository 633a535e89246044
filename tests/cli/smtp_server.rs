//! SMTP servers for the mail tests, all on 127.0.0.1:
//! - [`SmtpServer`]: a real one (`mailin-embedded`), optionally with
//!   STARTTLS (certificates made by a test CA), AUTH PLAIN/LOGIN, a custom
//!   refusal of one recipient, a hold at EHLO (to keep a delivery alive),
//!   or behind an implicit-TLS front (`smtps://`, which `mailin-embedded`
//!   cannot speak itself: it always greets in clear). It keeps what it
//!   receives so tests can parse it.
//! - [`reserve_port`]: a port held for a server that starts later, refusing
//!   connections meanwhile (the server is "down") and never given to anyone
//!   else.
//! - [`silent_server`]: accepts connections and never says a word.
//! - [`raw_server`]: answers each command with a scripted reply (what a real
//!   server library will not send, such as a 454 to STARTTLS).

#![allow(dead_code)]

use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    pub user: Option<String>,
}

/// The shared state of a [`Gate`]: open or not.
type Latch = Arc<(Mutex<bool>, Condvar)>;

/// Holds a server's sessions at EHLO until opened (or dropped): the
/// delivery talking to it stays alive meanwhile.
pub struct Gate {
    latch: Latch,
}

impl Gate {
    pub fn closed() -> Gate {
        Gate {
            latch: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }

    pub fn open(&self) {
        let (open, cv) = &*self.latch;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

impl Drop for Gate {
    /// A failed test never leaves a delivery hanging on its server.
    fn drop(&mut self) {
        self.open();
    }
}

fn wait_open(latch: &Latch) {
    let (open, cv) = &**latch;
    let mut g = open.lock().unwrap();
    while !*g {
        g = cv.wait(g).unwrap();
    }
}

#[derive(Clone)]
struct Collect {
    inbox: Arc<Mutex<Vec<Received>>>,
    /// A recipient refused at RCPT, with this code and text.
    refuse: Option<(String, u16, String)>,
    creds: Option<(String, String)>,
    hold: Option<Latch>,
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
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        if let Some(latch) = &self.hold {
            wait_open(latch);
        }
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match &self.refuse {
            Some((who, code, text)) if who == to => Response::custom(*code, text.clone()),
            _ => OK,
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
}

/// Paths of a test CA and a `localhost` certificate it signed (and the
/// certificate and key in DER, for the implicit-TLS front).
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
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
        cert_der: leaf.der().to_vec(),
        key_der: leaf_key.serialize_der(),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, leaf.pem()).unwrap();
    std::fs::write(&pki.key, leaf_key.serialize_pem()).unwrap();
    pki
}

/// A port held for a server that starts later ([`Builder::start_on`]):
/// bound but not listening, so a connection to it is refused (the server
/// is down) and no other socket can bind it or be given it meanwhile.
/// Binding once and keeping the socket closes the race of "find a free
/// port, release it, bind it again later".
pub struct ReservedPort {
    sock: OwnedFd,
    pub port: u16,
}

pub fn reserve_port() -> ReservedPort {
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // address structures are fully initialised before use.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        let sock = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        addr.sin_port = 0;
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(fd, (&raw const addr).cast(), len);
        assert_eq!(rc, 0, "bind: {}", io::Error::last_os_error());
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        let rc = libc::getsockname(fd, (&raw mut got).cast(), &mut got_len);
        assert_eq!(rc, 0, "getsockname: {}", io::Error::last_os_error());
        ReservedPort {
            sock,
            port: u16::from_be(got.sin_port),
        }
    }
}

impl ReservedPort {
    /// Starts listening on the held port (the same socket: nothing to race).
    pub fn listen(self) -> TcpListener {
        // SAFETY: listen(2) on a bound socket we own.
        let rc = unsafe { libc::listen(self.sock.as_raw_fd(), 128) };
        assert_eq!(rc, 0, "listen: {}", io::Error::last_os_error());
        TcpListener::from(self.sock)
    }
}

static CRYPTO: Once = Once::new();

fn crypto() {
    CRYPTO.call_once(|| {
        // Two rustls providers are compiled into the test binary; the
        // server side needs one chosen for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub struct SmtpServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
}

/// How a [`SmtpServer`] behaves; `start` or `start_on` runs it (until the
/// test binary exits).
#[derive(Default)]
pub struct Builder<'a> {
    starttls: Option<&'a Pki>,
    implicit_tls: Option<&'a Pki>,
    creds: Option<(String, String)>,
    refuse: Option<(String, u16, String)>,
    hold: Option<Latch>,
}

impl<'a> Builder<'a> {
    /// Offers STARTTLS with the test CA's `localhost` certificate.
    pub fn starttls(mut self, pki: &'a Pki) -> Self {
        self.starttls = Some(pki);
        self
    }

    /// TLS from the first byte (`smtps://`): a TLS front on the public port
    /// relays to the real server on a private one.
    pub fn implicit_tls(mut self, pki: &'a Pki) -> Self {
        self.implicit_tls = Some(pki);
        self
    }

    /// AUTH PLAIN and LOGIN (offered by mailin only once TLS is on).
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.creds = Some((user.to_string(), password.to_string()));
        self
    }

    /// Refuses one recipient at RCPT with this reply (sent as given, bytes
    /// and all).
    pub fn refuse_rcpt(mut self, to: &str, code: u16, text: &str) -> Self {
        self.refuse = Some((to.to_string(), code, text.to_string()));
        self
    }

    /// Every session waits at EHLO until `gate` opens.
    pub fn hold_at_ehlo(mut self, gate: &Gate) -> Self {
        self.hold = Some(gate.latch.clone());
        self
    }

    /// On a fresh port.
    pub fn start(self) -> SmtpServer {
        self.serve(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// On a port reserved earlier (the server comes up where it was down).
    pub fn start_on(self, port: ReservedPort) -> SmtpServer {
        self.serve(port.listen())
    }

    fn serve(self, listener: TcpListener) -> SmtpServer {
        crypto();
        let port = listener.local_addr().unwrap().port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let handler = Collect {
            inbox: inbox.clone(),
            refuse: self.refuse,
            creds: self.creds.clone(),
            hold: self.hold,
            current: None,
            user: None,
        };
        let mailin_listener = match self.implicit_tls {
            Some(pki) => {
                let backend = TcpListener::bind("127.0.0.1:0").unwrap();
                tls_front(listener, backend.local_addr().unwrap().port(), pki);
                backend
            }
            None => listener,
        };
        let mut server = Server::new(handler);
        server
            .with_name("localhost")
            .with_tcp_listener(mailin_listener);
        if let Some(p) = self.starttls {
            server
                .with_ssl(SslConfig::Trusted {
                    cert_path: p.cert.display().to_string(),
                    key_path: p.key.display().to_string(),
                    chain_path: p.ca.display().to_string(),
                })
                .unwrap();
        }
        if self.creds.is_some() {
            server
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { port, inbox }
    }
}

impl SmtpServer {
    pub fn builder<'a>() -> Builder<'a> {
        Builder::default()
    }

    /// A plain server on a fresh port.
    pub fn start() -> SmtpServer {
        Self::builder().start()
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }
}

/// Accepts TLS on `public` and relays the clear text to the server on
/// `backend`, one thread per connection.
fn tls_front(public: TcpListener, backend: u16, pki: &Pki) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(pki.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
    )
    .unwrap();
    let config = Arc::new(config);
    std::thread::spawn(move || {
        for conn in public.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = relay(conn, backend, config);
            });
        }
    });
}

fn relay(client: TcpStream, backend: u16, config: Arc<rustls::ServerConfig>) -> io::Result<()> {
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, client);
    // The whole handshake first: a client that does not speak TLS never
    // reaches the server.
    tls.sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let mut server = TcpStream::connect(("127.0.0.1", backend))?;
    let tick = Some(Duration::from_millis(5));
    tls.sock.set_read_timeout(tick)?;
    server.set_read_timeout(tick)?;
    let idle = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        )
    };
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => server.write_all(&buf[..n])?,
            Err(e) if idle(&e) => {}
            Err(e) => return Err(e),
        }
        match server.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                tls.write_all(&buf[..n])?;
                tls.flush()?;
            }
            Err(e) if idle(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// A server that accepts connections (and keeps them open) but never
/// answers: its port.
pub fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}

/// A scripted SMTP responder: greets with 220, then answers each command
/// line with `reply(line)` (CRLF added; several lines allowed); `None`
/// closes the connection. Its port.
pub fn raw_server(reply: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut out = conn.try_clone().unwrap();
                let _ = out.write_all(b"220 localhost raw ESMTP\r\n");
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { return };
                    match reply(line.trim_end()) {
                        Some(r) => {
                            if out.write_all(format!("{r}\r\n").as_bytes()).is_err() {
                                return;
                            }
                        }
                        None => return,
                    }
                }
            });
        }
    });
    port
}
