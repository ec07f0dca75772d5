//! Sending whole IPFIX messages over UDP or TCP.

use std::{io, net::SocketAddr, os::fd::AsRawFd, time::Duration};

use tokio::{
    io::AsyncWriteExt,
    net::{TcpSocket, TcpStream, UdpSocket},
    time::Instant,
};

/// Transport protocol towards a collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// One message per datagram; templates re-sent on a timer.
    Udp,
    /// A long-lived connection; templates sent once per connection.
    Tcp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
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
}

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
            Protocol::Tcp => {
                let s = if e.address.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                if e.local_address.is_some() {
                    s.bind(local)?;
                }
                let stream = tokio::time::timeout(Duration::from_secs(5), s.connect(e.address))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                stream.set_nodelay(true)?;
                Ok(Link::Tcp(stream))
            }
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
            Some(Link::Tcp(s)) => tokio::time::timeout(Duration::from_secs(10), s.write_all(message))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "send timed out"))?,
        };
        if result.is_err() && matches!(self.link, Some(Link::Tcp(_))) {
            self.fail();
        }
        result
    }
}
