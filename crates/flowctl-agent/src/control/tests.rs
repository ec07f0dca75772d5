//! The control socket end to end within one process: a client, the
//! server, and a stand-in for the event loop.

use std::time::Duration;

use flowctl_model::FlowSelector;

use super::*;

fn socket(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("flowctl-control-{tag}-{}", std::process::id()))
        .join("c.sock")
}

#[tokio::test]
async fn a_request_reaches_the_event_loop_and_its_answer_comes_back() {
    let path = socket("round");
    let (server, mut requests) = ControlServer::start(&path).await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    tokio::spawn(async move {
        while let Some((request, reply)) = requests.recv().await {
            let answer = match request {
                Request::Flush { selector } => Response::Flushed {
                    flows: u64::from(selector.sport.unwrap_or(0)),
                },
                _ => Response::Ok,
            };
            let _ = reply.send(answer);
        }
    });
    let p = path.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let selector = FlowSelector {
            sport: Some(7),
            ..Default::default()
        };
        request(&p, &Request::Flush { selector })
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(answer, Response::Flushed { flows: 7 });
    // A second agent on the same socket is refused.
    let err = ControlServer::start(&path).await.err().unwrap();
    assert!(err.to_string().contains("another agent answers"), "{err}");
    drop(server);
    assert!(!path.exists(), "the socket file goes with the server");
    let p = path.clone();
    let gone = tokio::task::spawn_blocking(move || request(&p, &Request::Status))
        .await
        .unwrap();
    assert_eq!(gone.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test]
async fn junk_oversized_and_idle_clients_get_nowhere() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = socket("junk");
    let (_server, mut requests) = ControlServer::start(&path).await.unwrap();
    let mut c = tokio::net::UnixStream::connect(&path).await.unwrap();
    c.write_all(b"{\"request\":\"format-disk\"}\n").await.unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).await.unwrap();
    assert!(answer.contains("bad request"), "{answer}");
    // A line longer than the limit is cut and refused (or the connection
    // reset, if the server closed it before the client finished writing).
    let mut c = tokio::net::UnixStream::connect(&path).await.unwrap();
    let _ = c.write_all(&vec![b'x'; MAX_REQUEST + 10]).await;
    let mut answer = String::new();
    match c.read_to_string(&mut answer).await {
        Ok(_) => assert!(answer.contains("bad request"), "{answer}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    // Idle connections beyond the limit do not block a real request.
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 8 {
        idle.push(tokio::net::UnixStream::connect(&path).await.unwrap());
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), requests.recv())
            .await
            .is_err(),
        "idle clients send nothing through"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}
