//! A fake EC2 instance metadata service on 127.0.0.1: IMDSv2's token dance (a PUT to
//! `/latest/api/token` with a TTL header, then the token on every GET), IMDSv1 when
//! allowed, and the few paths Corral reads. A real HTTP/1.1 server on a real socket, so
//! the client under test does real I/O; the guest reaches it through QEMU's `guestfwd`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake serves.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    pub instance_id: String,
    pub local_hostname: String,
    pub region: String,
    /// `(name, openssh public key)`.
    pub public_keys: Vec<(String, String)>,
    pub user_data: Option<Vec<u8>>,
    /// Refuse requests without a token (IMDSv2 required, EC2's recommended setting).
    pub require_token: bool,
    /// Answer the token PUT with 403, as IMDS does when v2 is turned off.
    pub v1_only: bool,
}

/// The server; it stops with the process (tests are short-lived).
pub struct FakeImds {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

/// The token the fake hands out.
pub const TOKEN: &str = "AQAEAFakeTokenForCorralTests==";

impl FakeImds {
    pub fn start(instance: Instance) -> std::io::Result<FakeImds> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let instance = Arc::new(instance);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, instance) = (Arc::clone(&log), Arc::clone(&instance));
                std::thread::spawn(move || {
                    let _ = serve(stream, &instance, &log);
                });
            }
        });
        Ok(FakeImds { port, requests })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, as `METHOD /path token=<yes|no|bad>`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, instance: &Instance, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    // Requests one after the other on the same stream, until the peer closes it:
    // QEMU's guestfwd keeps a single connection to this server and sends every guest
    // connection's bytes down it in turn, so the stream must stay open.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let token = match header("x-aws-ec2-metadata-token") {
            None => "no",
            Some(t) if t == TOKEN => "yes",
            Some(_) => "bad",
        };
        if let Ok(mut l) = log.lock() {
            l.push(format!("{method} {path} token={token}"));
        }
        let (status, body) = answer(
            instance,
            &method,
            &path,
            token,
            header("x-aws-ec2-metadata-token-ttl-seconds"),
        );
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            _ => "Method Not Allowed",
        };
        write!(
            stream,
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n",
            body.len()
        )?;
        stream.write_all(&body)?;
        stream.flush()?;
    }
}

fn answer(
    instance: &Instance,
    method: &str,
    path: &str,
    token: &str,
    ttl: Option<String>,
) -> (u16, Vec<u8>) {
    if path == "/latest/api/token" {
        if method != "PUT" {
            return (405, Vec::new());
        }
        if instance.v1_only {
            return (403, Vec::new());
        }
        return match ttl.and_then(|t| t.parse::<u32>().ok()) {
            Some(1..=21600) => (200, TOKEN.as_bytes().to_vec()),
            _ => (400, Vec::new()),
        };
    }
    if method != "GET" {
        return (405, Vec::new());
    }
    if token == "bad" || (token == "no" && instance.require_token) {
        return (401, Vec::new());
    }
    let text = |s: &str| (200, s.as_bytes().to_vec());
    match path {
        "/latest/user-data" => match &instance.user_data {
            Some(d) => (200, d.clone()),
            None => (404, Vec::new()),
        },
        "/latest/meta-data/instance-id" => text(&instance.instance_id),
        "/latest/meta-data/local-hostname" => text(&instance.local_hostname),
        "/latest/meta-data/placement/region" => text(&instance.region),
        "/latest/meta-data/public-keys/" | "/latest/meta-data/public-keys" => {
            if instance.public_keys.is_empty() {
                return (404, Vec::new());
            }
            let list: Vec<String> = instance
                .public_keys
                .iter()
                .enumerate()
                .map(|(i, (name, _))| format!("{i}={name}"))
                .collect();
            text(&list.join("\n"))
        }
        p => {
            let key = p
                .strip_prefix("/latest/meta-data/public-keys/")
                .and_then(|rest| rest.strip_suffix("/openssh-key"))
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| instance.public_keys.get(i));
            match key {
                Some((_, k)) => text(&format!("{k}\n")),
                None => (404, Vec::new()),
            }
        }
    }
}
