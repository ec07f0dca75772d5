//! The metrics as the agent holds them: the shared [`Metrics`] plus the HTTP
//! endpoint, started, moved or stopped as the configuration says.

use std::{net::SocketAddr, ops::Deref, sync::Arc};

use super::{ListenError, Metrics, MetricsServer};

/// The agent's metrics and, when enabled, their HTTP endpoint.
#[derive(Debug)]
pub struct MetricsService {
    metrics: Arc<Metrics>,
    server: Option<MetricsServer>,
}

impl MetricsService {
    /// Starts the endpoint on `address` (`None`: metrics are kept but not served).
    pub async fn start(address: Option<SocketAddr>) -> Result<Self, ListenError> {
        let metrics = Arc::new(Metrics::new());
        let server = match address {
            Some(a) => Some(serve(a, &metrics).await?),
            None => None,
        };
        Ok(Self { metrics, server })
    }

    /// Applies a reloaded configuration. A new address is listened on
    /// before the old one is closed; if that fails the error is logged and
    /// the running endpoint is kept.
    pub async fn reconfigure(&mut self, address: Option<SocketAddr>) {
        if self.server.as_ref().map(MetricsServer::configured_address) == address {
            return;
        }
        match address {
            None => {
                self.server = None;
                log::info!("metrics endpoint turned off");
            }
            Some(a) => match serve(a, &self.metrics).await {
                Ok(server) => self.server = Some(server),
                Err(e) => log::error!("{e}; keeping the running metrics endpoint"),
            },
        }
    }

    /// Where the endpoint listens, if it runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(MetricsServer::local_addr)
    }
}

impl Deref for MetricsService {
    type Target = Metrics;

    fn deref(&self) -> &Metrics {
        &self.metrics
    }
}

async fn serve(address: SocketAddr, metrics: &Arc<Metrics>) -> Result<MetricsServer, ListenError> {
    let server = MetricsServer::start(address, metrics.clone()).await?;
    log::info!("metrics on http://{}/metrics", server.local_addr());
    Ok(server)
}
