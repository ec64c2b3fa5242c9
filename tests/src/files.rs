//! A static file server on 127.0.0.1 for update repositories: GET of a file under its
//! folder, with `Range: bytes=N-` answered 206, and a way to cut the first transfer of
//! a file part way (a dropped connection), to test a download that resumes. The guest
//! reaches it through QEMU's `guestfwd`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The server; it stops with the process.
pub struct FileServer {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

/// Cut the first GET of a path that starts with `prefix` and ends with `suffix` after
/// `bytes`.
#[derive(Debug, Clone)]
pub struct Cut {
    pub prefix: String,
    pub suffix: String,
    pub bytes: u64,
}

impl FileServer {
    pub fn start(root: &Path, cut: Option<Cut>) -> std::io::Result<FileServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let root = root.to_path_buf();
        let cut = Arc::new(Mutex::new(cut));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, root, cut) = (Arc::clone(&log), root.clone(), Arc::clone(&cut));
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, &log, &cut);
                });
            }
        });
        Ok(FileServer { port, requests })
    }

    /// Every request so far, as `GET /path range=<from or ->`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    log: &Mutex<Vec<String>>,
    cut: &Mutex<Option<Cut>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let mut from = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("range: bytes=") {
                from = v.trim().trim_end_matches('-').parse::<u64>().ok();
            }
        }
        if let Ok(mut l) = log.lock() {
            l.push(format!(
                "{method} {path} range={}",
                from.map(|f| f.to_string()).unwrap_or("-".into())
            ));
        }
        let file = safe_path(root, path).and_then(|p| File::open(p).ok());
        let Some(mut file) = file.filter(|_| method == "GET") else {
            out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        let size = file.metadata()?.len();
        let start = from.unwrap_or(0).min(size);
        if from.is_some() && start >= size {
            out.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        }
        let status = if from.is_some() {
            "206 Partial Content"
        } else {
            "200 OK"
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
            size - start
        )?;
        file.seek(SeekFrom::Start(start))?;
        let limit = match cut.lock().ok().as_deref_mut() {
            Some(slot @ Some(_))
                if slot
                    .as_ref()
                    .is_some_and(|c| path.starts_with(&c.prefix) && path.ends_with(&c.suffix)) =>
            {
                slot.take().map(|c| c.bytes)
            }
            _ => None,
        };
        match limit {
            Some(n) => {
                std::io::copy(&mut file.take(n), &mut out)?;
                // The connection drops part way, as a network does (both halves: the
                // reader holds a clone of the socket).
                let _ = out.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
            None => {
                std::io::copy(&mut file, &mut out)?;
            }
        }
    }
}

/// `path` under `root`, refusing `..`.
fn safe_path(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.split('?').next()?.trim_start_matches('/');
    if rel.split('/').any(|p| p == "..") {
        return None;
    }
    Some(root.join(rel))
}
