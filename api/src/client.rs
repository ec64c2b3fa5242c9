//! The blocking client: one request, one answer, over the manager's socket.

use crate::{ApiError, Request, Response, MAX_MESSAGE};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Sends `request` to the manager at `socket` and returns its answer. `timeout` bounds
/// each read and write (a `logs` of a large service takes a while; an answer never
/// comes back in pieces slower than this).
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Response, ApiError> {
    let stream = send(socket, request, Some(timeout))?;
    let text = read_line(&mut BufReader::new(stream))?;
    serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))
}

/// Sends `request` (`service logs --follow`) and hands each answer to `each` until the
/// manager ends the stream or `each` returns false. Reads wait as long as it takes.
pub fn stream(
    socket: &Path,
    request: &Request,
    mut each: impl FnMut(Response) -> bool,
) -> Result<(), ApiError> {
    let mut reader = BufReader::new(send(socket, request, None)?);
    loop {
        let text = read_line(&mut reader)?;
        if text.is_empty() {
            return Ok(());
        }
        let response = serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()))?;
        if !each(response) {
            return Ok(());
        }
    }
}

/// Connects and writes the request; `timeout` bounds each later read and write.
fn send(
    socket: &Path,
    request: &Request,
    timeout: Option<Duration>,
) -> Result<UnixStream, ApiError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| ApiError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(Some(timeout.unwrap_or(Duration::from_secs(60))))?;
    let mut line = serde_json::to_vec(request).map_err(|e| ApiError::Decode(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line)?;
    Ok(stream)
}

/// One line of at most [`MAX_MESSAGE`] bytes, without its newline.
pub fn read_line(reader: &mut impl BufRead) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    reader
        .take(MAX_MESSAGE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    line_text(buf)
}

/// What was read of a line (up to [`MAX_MESSAGE`] + 1 bytes, through its newline) as
/// its text: too long, not UTF-8, or the text without the newline. The manager, which
/// reads asynchronously, checks its requests with it too.
pub fn line_text(mut buf: Vec<u8>) -> Result<String, ApiError> {
    if buf.len() > MAX_MESSAGE {
        return Err(ApiError::TooLong);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|e| ApiError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn a_request_and_its_answer_cross_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let got: Request = serde_json::from_str(&read_line(&mut reader).unwrap()).unwrap();
            let mut out = serde_json::to_vec(&Response::user(format!("{got:?}"))).unwrap();
            out.push(b'\n');
            (&stream).write_all(&out).unwrap();
        });
        let answer = call(
            &path,
            &Request::ServiceStop { name: "ntp".into() },
            Duration::from_secs(5),
        )
        .unwrap();
        server.join().unwrap();
        assert_eq!(
            answer,
            Response::user(r#"ServiceStop { name: "ntp" }"#.to_string())
        );
    }

    #[test]
    fn no_manager_is_a_clear_error() {
        let err = call(
            Path::new("/nonexistent/api.sock"),
            &Request::OsVersion,
            Duration::from_secs(1),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent/api.sock") && text.contains("sudo"),
            "{text}"
        );
    }

    #[test]
    fn an_overlong_line_is_refused() {
        let big = vec![b'x'; MAX_MESSAGE + 10];
        let err = read_line(&mut &big[..]).unwrap_err();
        assert!(matches!(err, ApiError::TooLong));
        assert_eq!(read_line(&mut &b"{}\nrest"[..]).unwrap(), "{}");
    }
}
