//! The HTTP endpoint: `GET /metrics` answers the OpenMetrics text (which
//! Prometheus scrapes natively), any other path 404, any other method 405.
//!
//! It holds at most [`MAX_CONNECTIONS`] connections, each for at most
//! [`CONNECTION_LIFETIME`]: past the cap it stops accepting, so waiting
//! clients queue in the kernel's listen backlog and take none of the
//! agent's file descriptors.

use std::{convert::Infallible, io, net::SocketAddr, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{
    body::Bytes,
    header::{HeaderValue, ALLOW, CONTENT_TYPE},
    server::conn::http1,
    service::service_fn,
    Method, Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinHandle};

use super::Metrics;

/// Content type of the OpenMetrics 1.0 text format.
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A client that has not sent its request headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once, at most.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection (keep-alive included) is closed after this long; a
/// response under way gets [`SHUTDOWN_GRACE`] more to finish.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// Time a connection being closed has to finish its response.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The endpoint could not listen.
#[derive(Debug, thiserror::Error)]
#[error("metrics: cannot listen on {address}: {cause}")]
pub struct ListenError {
    /// The configured address.
    pub address: SocketAddr,
    /// Why.
    pub cause: io::Error,
}

/// A running endpoint; dropping it stops listening.
#[derive(Debug)]
pub struct MetricsServer {
    configured: SocketAddr,
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Listens on `address` (port 0: any free port) and serves `metrics` on
    /// the current tokio runtime.
    pub async fn start(address: SocketAddr, metrics: Arc<Metrics>) -> Result<Self, ListenError> {
        let fail = |cause| ListenError { address, cause };
        let listener = TcpListener::bind(address).await.map_err(fail)?;
        let local = listener.local_addr().map_err(fail)?;
        let task = tokio::spawn(accept_loop(listener, metrics));
        Ok(Self {
            configured: address,
            local,
            task,
        })
    }

    /// The address it was started with (as configured).
    pub fn configured_address(&self) -> SocketAddr {
        self.configured
    }

    /// The address it listens on (the real port when 0 was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Wait for a free slot before accepting: the cap holds in the
        // kernel's backlog, not in this process.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                log::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            serve_connection(stream, metrics).await;
            drop(slot);
        });
    }
}

/// Serves one connection for at most [`CONNECTION_LIFETIME`].
async fn serve_connection(stream: tokio::net::TcpStream, metrics: Arc<Metrics>) {
    let service = service_fn(move |request| {
        let response = respond(&metrics, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let result = match tokio::time::timeout(CONNECTION_LIFETIME, connection.as_mut()).await {
        Ok(result) => result,
        Err(_) => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        log::debug!("metrics: connection: {e}");
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// The response to one request.
pub fn respond<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return text(StatusCode::NOT_FOUND, "not found: flowctl serves /metrics\n");
    }
    match *request.method() {
        Method::GET | Method::HEAD => {
            let mut r = Response::new(Full::new(Bytes::from(metrics.render())));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS));
            r
        }
        _ => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
            r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
    }
}
