//! The client side, for the CLI: one request, one answer, blocking.

use std::{
    io::{self, BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
};

use super::{Request, Response, MAX_REQUEST, TIMEOUT};

/// Sends `request` to the agent listening at `socket` and returns its
/// answer. `NotFound` or `ConnectionRefused` mean no agent is running there.
pub fn request(socket: &Path, request: &Request) -> io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream.take_limited()).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A reader that stops after a bounded answer.
trait TakeLimited {
    fn take_limited(self) -> io::Take<UnixStream>;
}

impl TakeLimited for UnixStream {
    fn take_limited(self) -> io::Take<UnixStream> {
        io::Read::take(self, 16 * MAX_REQUEST as u64)
    }
}
