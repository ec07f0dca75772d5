//! TLS for `flowctl collect` (`--tls-cert`, `--tls-key`, `--tls-ca`): the
//! rustls server configuration, and the handshake of each TCP connection,
//! bounded by [`HANDSHAKE_TIMEOUT`].

use std::{
    net::TcpStream,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use flowctl_export::tls::{crypto_provider, load_certs, load_key};
use rustls::{server::WebPkiClientVerifier, RootCertStore, ServerConfig, ServerConnection, StreamOwned};

/// A TLS handshake that takes longer than this is abandoned: a peer that
/// connects and says nothing holds one of the connection slots no longer.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connection to an exporter.
pub type TlsStream = StreamOwned<ServerConnection, TcpStream>;

/// The server configuration: this collector's certificate and key; with
/// `ca`, exporters must present a certificate that chains to it (mutual TLS).
pub fn server_config(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Arc<ServerConfig>, String> {
    let provider = crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("{}: not a usable CA certificate: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| format!("{}: does not go with {}: {e}", key.display(), cert.display()))?;
    Ok(Arc::new(config))
}

/// Completes the server side of the handshake within [`HANDSHAKE_TIMEOUT`].
pub fn accept(config: Arc<ServerConfig>, mut tcp: TcpStream) -> Result<TlsStream, String> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut conn = ServerConnection::new(config).map_err(|e| format!("TLS: {e}"))?;
    while conn.is_handshaking() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("TLS handshake not done within {} s", HANDSHAKE_TIMEOUT.as_secs()))?;
        let _ = tcp.set_read_timeout(Some(left));
        let _ = tcp.set_write_timeout(Some(left));
        match conn.complete_io(&mut tcp) {
            Ok((0, 0)) if conn.is_handshaking() => return Err("TLS handshake: the peer went away".into()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(format!(
                    "TLS handshake not done within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                ))
            }
            Err(e) => return Err(format!("TLS handshake failed: {e}")),
        }
    }
    let _ = tcp.set_write_timeout(None);
    Ok(StreamOwned::new(conn, tcp))
}
