//! The server side: accepts connections on the socket and hands each
//! request to the agent's event loop, which answers it.

use std::{
    io,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot, Semaphore},
    task::JoinHandle,
};

use super::{Request, Response, MAX_CONNECTIONS, MAX_REQUEST, TIMEOUT};

/// A request waiting for the event loop's answer.
pub type PendingRequest = (Request, oneshot::Sender<Response>);

/// The listening socket; dropping it stops it and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Listens at `path` (its directory created 0755, the socket 0600).
    /// Refuses when an agent already answers there; a stale socket file is
    /// replaced. Requests arrive on the returned channel.
    pub async fn start(path: &Path) -> io::Result<(Self, mpsc::Receiver<PendingRequest>)> {
        if UnixStream::connect(path).await.is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another agent answers on {}", path.display()),
            ));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let (tx, rx) = mpsc::channel(MAX_CONNECTIONS);
        let task = tokio::spawn(accept(listener, tx));
        Ok((
            Self {
                path: path.to_path_buf(),
                task,
            },
            rx,
        ))
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept(listener: UnixListener, tx: mpsc::Sender<PendingRequest>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Past the limit a connection is closed at once.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(TIMEOUT, serve(stream, tx)).await;
            drop(slot);
        });
    }
}

/// Reads one request line, passes it on, writes the answer.
async fn serve(stream: UnixStream, tx: mpsc::Sender<PendingRequest>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST as u64))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::Error {
            message: format!("bad request: {e}"),
        },
        Ok(request) => {
            let (reply, answer) = oneshot::channel();
            if tx.send((request, reply)).await.is_err() {
                Response::Error {
                    message: "the agent is stopping".into(),
                }
            } else {
                answer.await.unwrap_or(Response::Error {
                    message: "the agent is stopping".into(),
                })
            }
        }
    };
    let mut out = serde_json::to_vec(&response).map_err(io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await
}
