//! IPFIX over TLS (RFC 7011 §11): the certificates a collector connection
//! uses, read from PEM files, and the rustls client configuration made from
//! them. Errors are one line and name the file.

use std::{
    io::Read,
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{pki_types::ServerName, ClientConfig, RootCertStore};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

/// Largest PEM file read: far above any certificate chain or key, and a
/// bound for a path that names a device or a runaway file.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// How to reach a collector over TLS. Files are read at every connection
/// attempt, so a renewed certificate is used from the next connection on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsClientSettings {
    /// PEM file of the CA certificates the collector's certificate must chain to.
    pub ca_file: PathBuf,
    /// PEM file of this exporter's certificate chain (mutual TLS), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM file of this exporter's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// The name the collector's certificate must carry (a DNS name or an IP address).
    pub server_name: String,
}

impl TlsClientSettings {
    /// The rustls configuration: the CA as the only trust anchors, the
    /// client certificate if given. Fails with a one-line reason.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let mut roots = RootCertStore::empty();
        let cas = load_certs(&self.ca_file)?;
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| format!("{}: not a usable CA certificate: {e}", self.ca_file.display()))?;
        }
        let builder = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots);
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
                .map_err(|e| format!("{}: does not go with {}: {e}", key.display(), cert.display()))?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("a client certificate needs both its certificate and its key file".into()),
        };
        Ok(Arc::new(config))
    }

    /// The collector's name as rustls checks it.
    pub fn server_name(&self) -> Result<ServerName<'static>, String> {
        ServerName::try_from(self.server_name.clone())
            .map_err(|_| format!("{:?} is not a DNS name or an IP address", self.server_name))
    }
}

/// The cryptography of every TLS connection: rustls over *ring*. rustls
/// 0.23.48 deprecates it in favour of aws-lc-rs for its post-quantum key
/// exchange, which no IPFIX collector offers (OpenSSL 3.0 in Debian 12 has
/// none) and which would add a CMake-built C library to the build.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The text of a PEM file of at most [`MAX_PEM_BYTES`].
fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let name = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "{name}: longer than the {MAX_PEM_BYTES} bytes a PEM file may have"
        ));
    }
    Ok(bytes)
}

/// Every certificate of a PEM file; at least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: no usable PEM private key: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA, a certificate it signs for `names`, and its key, in `dir`.
    fn issue(dir: &Path, prefix: &str, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{prefix} CA"));
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let paths = (
            dir.join(format!("{prefix}-ca.pem")),
            dir.join(format!("{prefix}-cert.pem")),
            dir.join(format!("{prefix}-key.pem")),
        );
        std::fs::write(&paths.0, ca.pem()).unwrap();
        std::fs::write(&paths.1, cert.pem()).unwrap();
        std::fs::write(&paths.2, key.serialize_pem()).unwrap();
        paths
    }

    /// A one-connection TLS server requiring a client certificate from
    /// `client_ca`; returns its address and what it received.
    fn server(
        cert: &Path,
        key: &Path,
        client_ca: &Path,
    ) -> (std::net::SocketAddr, std::thread::JoinHandle<Result<Vec<u8>, String>>) {
        let mut roots = RootCertStore::empty();
        roots.add(load_certs(client_ca).unwrap().remove(0)).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
            .build()
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(load_certs(cert).unwrap(), load_key(key).unwrap())
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut stream, &mut buf) {
                    Ok(0) => return Ok(got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if got.is_empty() => return Err(e.to_string()),
                    Err(_) => return Ok(got),
                }
            }
        });
        (address, thread)
    }

    #[tokio::test]
    async fn mutual_tls_carries_messages_and_a_wrong_ca_is_refused() {
        use crate::transport::{Endpoint, Protocol, Transport};
        let dir = std::env::temp_dir().join(format!("flowctl-tls-transport-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (server_ca, server_cert, server_key) = issue(&dir, "server", &["collector.test"]);
        let (client_ca, client_cert, client_key) = issue(&dir, "client", &["exporter.test"]);
        let (other_ca, _, _) = issue(&dir, "other", &["elsewhere.test"]);
        let settings = |ca: &Path| TlsClientSettings {
            ca_file: ca.to_path_buf(),
            cert_file: Some(client_cert.clone()),
            key_file: Some(client_key.clone()),
            server_name: "collector.test".into(),
        };
        let endpoint = |address, ca: &Path| Endpoint {
            address,
            protocol: Protocol::Tls,
            local_address: None,
            tls: Some(settings(ca)),
        };

        let (address, received) = server(&server_cert, &server_key, &client_ca);
        let mut t = Transport::new(endpoint(address, &server_ca));
        assert!(t.ensure_connected().await.unwrap(), "a new session");
        assert_eq!(t.local_address().map(|a| a.ip()), Some("127.0.0.1".parse().unwrap()));
        t.send(b"first message").await.unwrap();
        t.send(b", second").await.unwrap();
        drop(t);
        assert_eq!(received.join().unwrap().unwrap(), b"first message, second");

        // The collector's certificate does not chain to the CA we trust.
        let (address, refused) = server(&server_cert, &server_key, &client_ca);
        let mut t = Transport::new(endpoint(address, &other_ca));
        let err = t.ensure_connected().await.unwrap_err().to_string();
        assert!(
            err.starts_with("TLS handshake:") && err.contains("UnknownIssuer") && !err.contains('\n'),
            "{err}"
        );
        assert!(!t.is_connected());
        let again = t.ensure_connected().await.unwrap_err();
        assert_eq!(
            again.kind(),
            std::io::ErrorKind::NotConnected,
            "retried after the backoff, not at once"
        );
        assert!(refused.join().unwrap().is_err(), "the server saw no data");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn settings(dir: &Path, ca: &str) -> TlsClientSettings {
        TlsClientSettings {
            ca_file: dir.join(ca),
            cert_file: None,
            key_file: None,
            server_name: "localhost".into(),
        }
    }

    #[test]
    fn bad_files_give_one_line_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("flowctl-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("junk.pem"), "not a certificate\n").unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        let cases = [
            (settings(&dir, "missing.pem"), "missing.pem: cannot read"),
            (settings(&dir, "junk.pem"), "junk.pem: no PEM certificate"),
            (
                TlsClientSettings {
                    cert_file: Some(dir.join("ca.pem")),
                    ..settings(&dir, "ca.pem")
                },
                "needs both",
            ),
            (
                TlsClientSettings {
                    cert_file: Some(dir.join("ca.pem")),
                    key_file: Some(dir.join("junk.pem")),
                    ..settings(&dir, "ca.pem")
                },
                "junk.pem: no usable PEM private key",
            ),
        ];
        for (s, expected) in cases {
            let err = s.client_config().unwrap_err();
            assert!(err.contains(expected) && !err.contains('\n'), "{err}");
        }
        let good = TlsClientSettings {
            cert_file: Some(dir.join("ca.pem")),
            key_file: Some(dir.join("key.pem")),
            ..settings(&dir, "ca.pem")
        };
        assert!(good.client_config().is_ok());
        assert!(TlsClientSettings {
            server_name: "not a name!".into(),
            ..good
        }
        .server_name()
        .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
