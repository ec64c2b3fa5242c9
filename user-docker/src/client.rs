//! Talking to the user engine through its socket: connecting (the API version
//! negotiated), waiting for it to answer, whether it has live-restore on, stopping its
//! workloads (with live-restore, before its service stops), and a
//! plain JSON POST for the request fields bollard's models lack (Swarm's
//! `Availability` on init and join).

use crate::SOCKET;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most of an engine's answer to [`post_json`] that is read.
pub const MAX_ANSWER: u64 = 1 << 20;

/// Why [`post_json`] got no success.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("connecting to {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("talking to the engine: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer from the engine within {0:?}")]
    Timeout(Duration),
    #[error("the engine's answer is not HTTP: {0}")]
    Malformed(String),
    #[error("Docker responded with status code {status}: {message}")]
    Status { status: u16, message: String },
}

/// Connects to the user engine's socket, the API version negotiated.
pub async fn connect() -> Option<bollard::Docker> {
    corral_dockerd::engine::connect_to("user", std::path::Path::new(SOCKET))
        .await
        .ok()
}

/// Waits up to `within` for the user engine to answer a ping; the connected client.
/// `within` bounds each try too: a dockerd still starting has its socket open but
/// answers nothing until it is ready, so a try can otherwise hang for as long as that.
pub async fn answering(within: Duration) -> Option<bollard::Docker> {
    answering_on(Path::new(SOCKET), within).await
}

/// [`answering`] for the engine on `socket`.
async fn answering_on(socket: &Path, within: Duration) -> Option<bollard::Docker> {
    let deadline = tokio::time::Instant::now() + within;
    let try_once = async {
        loop {
            if let Ok(d) = corral_dockerd::engine::connect_to("user", socket).await {
                if d.ping().await.is_ok() {
                    return d;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout_at(deadline, try_once).await.ok()
}

/// Whether the running user engine says it has `live-restore` on; false when it does
/// not answer within `within`.
pub async fn live_restore_on(within: Duration) -> bool {
    let ask = async {
        let docker = connect().await?;
        docker.info().await.ok()?.live_restore_enabled
    };
    matches!(tokio::time::timeout(within, ask).await, Ok(Some(true)))
}

/// Stops the user engine's running containers (SIGTERM, then `timeout` before dockerd
/// kills them), all at once. Returns how many were stopped and the failures.
pub async fn stop_workloads(timeout: Duration) -> (usize, Vec<String>) {
    let Some(docker) = connect().await else {
        return (0, Vec::new());
    };
    let Ok(running) = docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
    else {
        return (0, Vec::new());
    };
    let ids: Vec<String> = running.into_iter().filter_map(|c| c.id).collect();
    let stops = ids.iter().map(|id| {
        let docker = docker.clone();
        async move {
            let opts = bollard::query_parameters::StopContainerOptions {
                t: Some(timeout.as_secs() as i32),
                signal: None,
            };
            docker
                .stop_container(id, Some(opts))
                .await
                .map_err(|e| format!("container {}: {e}", id.get(..12).unwrap_or(id)))
        }
    });
    let failures: Vec<String> = futures_util::future::join_all(stops)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    (ids.len() - failures.len(), failures)
}

/// POSTs `body` as JSON to `path` (`/swarm/join`) on the engine at `socket` and returns
/// the answer's body on a 2xx status; otherwise the engine's message. The whole
/// exchange is bounded by `within`, the answer by [`MAX_ANSWER`].
pub async fn post_json(
    socket: &Path,
    path: &str,
    body: &serde_json::Value,
    within: Duration,
) -> Result<String, PostError> {
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|source| PostError::Connect {
                path: socket.display().to_string(),
                source,
            })?;
        let body = body.to_string();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: corral\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(format!("{head}{body}").as_bytes()).await?;
        let mut answer = Vec::new();
        stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
        Ok::<_, PostError>(answer)
    };
    let answer = tokio::time::timeout(within, exchange)
        .await
        .map_err(|_| PostError::Timeout(within))??;
    let (status, body) = parse_answer(&answer)?;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    // The engine's errors are `{"message": "..."}`.
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().chars().take(500).collect());
    Err(PostError::Status { status, message })
}

/// An HTTP/1.1 answer's status and body (a chunked body joined; a body shorter than
/// its `Content-Length` is an error).
pub fn parse_answer(answer: &[u8]) -> Result<(u16, String), PostError> {
    let malformed = |why: &str| PostError::Malformed(why.to_string());
    let end = find(answer, b"\r\n\r\n").ok_or_else(|| malformed("no end of headers"))?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let body = &answer[end + 4..];
    let status_line = head.split("\r\n").next().unwrap_or_default();
    let mut words = status_line.split(' ');
    let status = match (words.next(), words.next()) {
        (Some("HTTP/1.1" | "HTTP/1.0"), Some(code))
            if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) =>
        {
            code.parse::<u16>().unwrap_or_default()
        }
        _ => return Err(malformed(&status_line.chars().take(80).collect::<String>())),
    };
    let header = |wanted: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case(wanted)
                .then(|| value.trim().to_string())
        })
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if !chunked {
        let body = match header("content-length") {
            Some(length) => {
                let length: usize = length
                    .parse()
                    .map_err(|_| malformed("a Content-Length that is not a number"))?;
                body.get(..length)
                    .ok_or_else(|| malformed("a body shorter than its Content-Length"))?
            }
            None => body,
        };
        return Ok((status, text(body)));
    }
    let mut joined = Vec::new();
    let mut rest = body;
    loop {
        let line_end =
            find(rest, b"\r\n").ok_or_else(|| malformed("a chunk without its size line"))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| malformed("a chunk size that is not hexadecimal"))?;
        let after = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, text(&joined)));
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| malformed("a chunk shorter than its size"))?;
        joined.extend_from_slice(chunk);
        rest = after[size..]
            .strip_prefix(b"\r\n")
            .ok_or_else(|| malformed("a chunk not followed by its line end"))?;
    }
}

/// Where `needle` first appears in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_engine_that_accepts_but_never_answers_is_given_up_on_in_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("docker.sock");
        // A dockerd still starting: its socket accepts, nothing answers.
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let started = std::time::Instant::now();
        assert!(answering_on(&socket, Duration::from_millis(500))
            .await
            .is_none());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "gave up after {:?}, not after bollard's own 120 s",
            started.elapsed()
        );
        held.abort();
        assert!(
            answering_on(&dir.path().join("absent.sock"), Duration::ZERO)
                .await
                .is_none()
        );
    }

    #[test]
    fn answers_are_read_plain_or_chunked_and_anything_else_is_an_error() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_answer(plain).unwrap(), (200, "{}".to_string()));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
                        5\r\n{\"mes\r\n13\r\nsage\":\"no manager\"}\r\n0\r\n\r\n";
        assert_eq!(
            parse_answer(chunked).unwrap(),
            (503, "{\"message\":\"no manager\"}".to_string())
        );
        // Sizes count bytes: a character split across two chunks comes out whole.
        let split = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\na\xc3\r\n1\r\n\xa9\r\n0\r\n\r\n";
        assert_eq!(parse_answer(split).unwrap(), (200, "a\u{e9}".to_string()));
        for bad in [
            &b""[..],
            b"garbage\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX0\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 +20 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\ncut",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        ] {
            assert!(
                matches!(parse_answer(bad), Err(PostError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn a_post_returns_the_body_or_the_engine_s_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("engine.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in [
                "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n\"node\"",
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 42\r\n\r\n\
                 {\"message\":\"This node is already part of\"}",
            ] {
                let (mut s, _) = listener.accept().await.expect("accept");
                // The request is one write, ending with its 24-byte body.
                let mut buf = Vec::new();
                while !buf.ends_with(b"\"drain\"}") {
                    let mut more = [0; 4096];
                    let n = s.read(&mut more).await.expect("read");
                    assert!(n > 0, "the request ended early");
                    buf.extend_from_slice(&more[..n]);
                }
                seen.push(String::from_utf8_lossy(&buf).to_string());
                s.write_all(answer.as_bytes()).await.expect("write");
            }
            // A third connection that never answers.
            let (s, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(s);
            seen
        });
        let body = serde_json::json!({"Availability": "drain"});
        let within = Duration::from_secs(2);
        assert_eq!(
            post_json(&socket, "/swarm/join", &body, within)
                .await
                .unwrap(),
            "\"node\""
        );
        match post_json(&socket, "/swarm/join", &body, within).await {
            Err(PostError::Status {
                status: 503,
                message,
            }) => {
                assert_eq!(message, "This node is already part of")
            }
            other => panic!("{other:?}"),
        }
        let timed_out = post_json(&socket, "/swarm/join", &body, Duration::from_millis(300)).await;
        assert!(
            matches!(timed_out, Err(PostError::Timeout(_))),
            "{timed_out:?}"
        );
        let seen = server.await.expect("server");
        assert!(
            seen[0].starts_with("POST /swarm/join HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0].ends_with("\r\n\r\n{\"Availability\":\"drain\"}"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("Content-Length: 24\r\n"), "{}", seen[0]);
        let gone = dir.path().join("none.sock");
        assert!(matches!(
            post_json(&gone, "/x", &body, within).await,
            Err(PostError::Connect { .. })
        ));
    }
}
