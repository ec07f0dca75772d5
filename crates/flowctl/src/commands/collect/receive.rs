//! The receiving side of `flowctl collect`: one thread reads UDP datagrams,
//! one accepts TCP connections and a thread per connection splits its
//! stream into messages. They hand raw messages (at most 64 KiB each) to
//! the printer over a bounded channel, so a flood waits in the kernel's
//! socket buffers, where it is dropped, not in this process.

use std::{
    io::{ErrorKind, Read},
    net::{SocketAddr, TcpListener, UdpSocket},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc::SyncSender,
        Arc,
    },
    thread,
    time::Duration,
};

use flowctl_ipfix::split_stream;

/// Messages waiting for the printer, at most.
pub const QUEUE_MESSAGES: usize = 64;
/// TCP exporters connected at once, at most.
pub const TCP_CONNECTIONS: usize = 16;
/// A TCP connection silent this long is closed.
pub const TCP_IDLE: Duration = Duration::from_secs(600);

/// What the receiving threads hand to the printer.
pub enum Event {
    /// A datagram from an exporter.
    Datagram(SocketAddr, Vec<u8>),
    /// A whole message from TCP connection `id`.
    Stream(u64, SocketAddr, Vec<u8>),
    /// TCP connection `id` is closed (its templates go with it).
    Closed(u64),
    /// Something to report about a peer.
    Error(SocketAddr, String),
}

/// Reads datagrams until the printer goes away.
pub fn receive_udp(socket: UdpSocket, tx: SyncSender<Event>) {
    let mut buf = vec![0u8; 65536];
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let datagram = buf.get(..n).unwrap_or_default().to_vec();
        if tx.send(Event::Datagram(from, datagram)).is_err() {
            return;
        }
    }
}

/// Accepts connections, refusing those past [`TCP_CONNECTIONS`]; with
/// `tls`, each speaks TLS (its handshake bounded by
/// [`super::tls::HANDSHAKE_TIMEOUT`]).
pub fn accept_tcp(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, tx: SyncSender<Event>) {
    let open = Arc::new(AtomicUsize::new(0));
    for (id, stream) in (0u64..).zip(listener.incoming()) {
        let Ok(stream) = stream else { continue };
        let Ok(peer) = stream.peer_addr() else { continue };
        if open.load(Ordering::SeqCst) >= TCP_CONNECTIONS {
            let refused = format!("connection refused: {TCP_CONNECTIONS} TCP exporters are connected already");
            if tx.send(Event::Error(peer, refused)).is_err() {
                return;
            }
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let (tx, open, tls) = (tx.clone(), Arc::clone(&open), tls.clone());
        thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(TCP_IDLE));
            match tls {
                None => receive_tcp(id, peer, stream, &tx),
                Some(config) => match super::tls::accept(config, stream) {
                    Ok(tls_stream) => {
                        let _ = tls_stream.sock.set_read_timeout(Some(TCP_IDLE));
                        receive_tcp(id, peer, tls_stream, &tx)
                    }
                    Err(e) => {
                        let _ = tx.send(Event::Error(peer, e));
                    }
                },
            }
            open.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(Event::Closed(id));
        });
    }
}

/// Splits one connection's stream into messages until it ends, fails,
/// goes silent for [`TCP_IDLE`] or sends something that is not IPFIX.
fn receive_tcp(id: u64, peer: SocketAddr, mut stream: impl Read, tx: &SyncSender<Event>) {
    // At most one message (64 KiB) and one read are ever pending.
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let idle = format!("silent for {} s, closing the connection", TCP_IDLE.as_secs());
                let _ = tx.send(Event::Error(peer, idle));
                return;
            }
            Err(_) => return,
        };
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
        let (messages, consumed) = match split_stream(&pending) {
            Ok(split) => split,
            Err(e) => {
                let _ = tx.send(Event::Error(peer, format!("{e}; closing the connection")));
                return;
            }
        };
        for message in messages {
            if tx.send(Event::Stream(id, peer, message.to_vec())).is_err() {
                return;
            }
        }
        pending.drain(..consumed);
    }
}
