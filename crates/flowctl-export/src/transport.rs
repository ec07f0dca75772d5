//! Sending whole IPFIX messages over UDP, TCP or TLS over TCP.

use std::{io, net::SocketAddr, os::fd::AsRawFd, pin::Pin, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncWriteExt, ReadBuf},
    net::{TcpSocket, TcpStream, UdpSocket},
    time::Instant,
};
use tokio_rustls::{client::TlsStream, TlsConnector};

use crate::tls::TlsClientSettings;

/// Transport protocol towards a collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// One message per datagram; templates re-sent on a timer.
    Udp,
    /// A long-lived connection; templates sent once per connection.
    Tcp,
    /// TCP carrying TLS (RFC 7011 §11): as TCP, the collector authenticated
    /// by its certificate (and the exporter by its own, for mutual TLS).
    Tls,
}

impl Protocol {
    /// Whether messages go over a connection (TCP, TLS): templates once
    /// per connection, withdrawals allowed, no UDP datagram limits.
    pub fn is_stream(self) -> bool {
        self != Protocol::Udp
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        })
    }
}

/// Where and how to send.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Collector address.
    pub address: SocketAddr,
    /// UDP or TCP.
    pub protocol: Protocol,
    /// Local address to bind (source address and port).
    pub local_address: Option<SocketAddr>,
    /// Certificates and server name, for [`Protocol::Tls`].
    pub tls: Option<TlsClientSettings>,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.protocol, self.address)
    }
}

/// Reconnect backoff: 1 s doubling to 30 s.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A connection (or UDP socket) to one collector, re-established with
/// backoff when it fails.
pub struct Transport {
    endpoint: Endpoint,
    link: Option<Link>,
    backoff: Duration,
    next_attempt: Instant,
}

enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// How long connecting (and the TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one message may take to be written.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

impl Transport {
    /// A transport that connects on first use.
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            link: None,
            backoff: BACKOFF_MIN,
            next_attempt: Instant::now(),
        }
    }

    /// The collector.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Whether a connection (or socket) is up.
    pub fn is_connected(&self) -> bool {
        self.link.is_some()
    }

    /// Connects if not connected and the backoff allows. `Ok(true)` when a
    /// new transport session started (templates must be sent first).
    pub async fn ensure_connected(&mut self) -> io::Result<bool> {
        if self.link.is_some() {
            return Ok(false);
        }
        if Instant::now() < self.next_attempt {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "waiting to reconnect"));
        }
        match self.connect().await {
            Ok(link) => {
                self.link = Some(link);
                self.backoff = BACKOFF_MIN;
                Ok(true)
            }
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    async fn connect(&self) -> io::Result<Link> {
        let e = &self.endpoint;
        let any = if e.address.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        let local = e.local_address.unwrap_or(std::net::SocketAddr::new(any, 0));
        match e.protocol {
            Protocol::Udp => {
                let s = UdpSocket::bind(local).await?;
                s.connect(e.address).await?;
                crate::refused::enable(s.as_raw_fd(), e.address.is_ipv6())?;
                Ok(Link::Udp(s))
            }
            Protocol::Tcp => Ok(Link::Tcp(self.connect_tcp(local).await?)),
            Protocol::Tls => {
                let settings = e
                    .tls
                    .as_ref()
                    .ok_or_else(|| invalid("no TLS settings for a tls:// collector"))?;
                // Read at every attempt: a renewed certificate is taken up
                // at the next connection; a bad one is retried with backoff.
                let config = settings.client_config().map_err(invalid)?;
                let name = settings.server_name().map_err(invalid)?;
                let stream = self.connect_tcp(local).await?;
                let handshake = TlsConnector::from(config).connect(name, stream);
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
                    .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
                Ok(Link::Tls(Box::new(refused_after_handshake(tls).await?)))
            }
        }
    }

    async fn connect_tcp(&self, local: SocketAddr) -> io::Result<TcpStream> {
        let e = &self.endpoint;
        let s = if e.address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if e.local_address.is_some() {
            s.bind(local)?;
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, s.connect(e.address))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// The local address of the connection (or UDP socket), once up: the
    /// address collectors see the export come from, unless something
    /// between rewrites it.
    pub fn local_address(&self) -> Option<SocketAddr> {
        match self.link.as_ref()? {
            Link::Udp(s) => s.local_addr().ok(),
            Link::Tcp(s) => s.local_addr().ok(),
            Link::Tls(s) => s.get_ref().0.local_addr().ok(),
        }
    }

    /// Drops the connection; the next attempt waits for the backoff.
    fn fail(&mut self) {
        self.link = None;
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// UDP: the first bytes of every datagram the collector refused since
    /// the last call ([`crate::refused`]); always empty over TCP.
    pub fn refused(&mut self) -> Vec<Vec<u8>> {
        match &self.link {
            Some(Link::Udp(s)) => crate::refused::drain(s.as_raw_fd()),
            _ => Vec::new(),
        }
    }

    /// Sends one whole message. On error the connection is dropped (TCP) or
    /// kept (UDP: a refused datagram says nothing about the next one).
    pub async fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let result = match self.link.as_mut() {
            None => return Err(io::Error::new(io::ErrorKind::NotConnected, "not connected")),
            Some(Link::Udp(s)) => s.send(message).await.map(|_| ()),
            // A collector never sends: end of stream or a reset means it is
            // gone, and a write now would be accepted and lost.
            Some(Link::Tcp(s)) if crate::refused::peer_closed(s.as_raw_fd()) => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the collector closed the connection",
            )),
            Some(Link::Tcp(s)) => tokio::time::timeout(SEND_TIMEOUT, s.write_all(message))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "send timed out"))?,
            Some(Link::Tls(s)) => {
                if tls_peer_closed(s) {
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the collector closed the TLS connection",
                    ))
                } else {
                    tokio::time::timeout(SEND_TIMEOUT, async {
                        s.write_all(message).await?;
                        s.flush().await
                    })
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "send timed out"))?
                }
            }
        };
        if result.is_err() && !matches!(self.link, Some(Link::Udp(_))) {
            self.fail();
        }
        result
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

/// How long a new TLS connection is watched for the collector refusing
/// this exporter's certificate.
const CLIENT_CERT_VERDICT: Duration = Duration::from_millis(300);

/// TLS 1.3: the client finishes its handshake before the collector has
/// checked the client certificate, and a refusal comes as an alert right
/// after. Waits [`CLIENT_CERT_VERDICT`] for one, so that a refused
/// connection fails here, before any message is written into it.
async fn refused_after_handshake(mut tls: TlsStream<TcpStream>) -> io::Result<TlsStream<TcpStream>> {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 64];
    match tokio::time::timeout(CLIENT_CERT_VERDICT, tls.read(&mut byte)).await {
        Err(_) | Ok(Ok(1..)) => Ok(tls),
        Ok(Ok(0)) => Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "the collector closed the TLS connection after the handshake",
        )),
        Ok(Err(e)) => Err(io::Error::new(
            e.kind(),
            format!("TLS: the collector refused the connection: {e}"),
        )),
    }
}

/// TLS: whether the collector closed the connection (close_notify, end of
/// stream or an error). The bytes of the socket cannot tell, since a TLS
/// server sends records of its own (session tickets): read the TLS stream
/// without waiting; records that carry no data are consumed by rustls.
fn tls_peer_closed(stream: &mut TlsStream<TcpStream>) -> bool {
    let mut byte = [0u8; 64];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match Pin::new(stream).poll_read(&mut cx, &mut buf) {
        std::task::Poll::Pending => false,
        // Data from a collector is unexpected and ignored; nothing means the end.
        std::task::Poll::Ready(Ok(())) => buf.filled().is_empty(),
        std::task::Poll::Ready(Err(_)) => true,
    }
}
