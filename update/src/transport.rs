//! How `tough` reads a repository: from an update file ([`BundleTransport`]) or over
//! http(s) ([`HttpTransport`], the project's ureq client with the system's CA roots).
//! A target downloaded over http goes into a cache folder on the state partition as
//! `<sha256>.<name>.part` and is renamed once whole; an interrupted download resumes
//! from where it stopped with a `Range` request. Nothing these return is trusted:
//! `tough` checks every byte against the signed metadata as it reads the stream.

use crate::bundle::{Blob, Bundle};
use futures_util::stream;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tough::{Bytes, Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

/// How much a metadata file may be (tough has its own, smaller, limits per role).
const MAX_METADATA: u64 = 16 << 20;
const CHUNK: usize = 256 << 10;

/// The base of the URLs the update file's members are read under.
pub const BUNDLE_BASE: &str = "file:///corral-update/";

fn other(url: &Url, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> TransportError {
    TransportError::new_with_cause(TransportErrorKind::Other, url.as_str(), e)
}

/// A stream of a blob's bytes.
pub fn blob_stream(blob: &Blob, url: &Url) -> Result<TransportStream, TransportError> {
    let mut file = fs::File::open(&blob.file).map_err(|e| other(url, e))?;
    file.seek(SeekFrom::Start(blob.offset))
        .map_err(|e| other(url, e))?;
    let url = url.clone();
    let left = blob.size;
    let chunks = stream::unfold((file, left, url), |(mut file, left, url)| async move {
        if left == 0 {
            return None;
        }
        let want = left.min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        match file.read(&mut buf) {
            Ok(0) => Some((Err(other(&url, "the file ended early")), (file, 0, url))),
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64, url)))
            }
            Err(e) => Some((Err(other(&url, e)), (file, 0, url))),
        }
    });
    Ok(Box::pin(chunks))
}

/// Reads an update file's members.
#[derive(Debug, Clone)]
pub struct BundleTransport {
    pub bundle: Arc<Bundle>,
}

#[tough::async_trait]
impl Transport for BundleTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        let name = url.as_str().strip_prefix(BUNDLE_BASE).unwrap_or("");
        match self.bundle.get(name) {
            Some(blob) => blob_stream(blob, &url),
            None => Err(TransportError::new(
                TransportErrorKind::FileNotFound,
                url.as_str(),
            )),
        }
    }
}

/// Reads a repository over http(s), downloading targets into `cache` with resume.
#[derive(Clone)]
pub struct HttpTransport {
    pub agent: ureq::Agent,
    /// The repository's targets URL, under which files are downloaded to the cache.
    pub targets_base: Url,
    pub cache: PathBuf,
    /// Show a progress bar for downloads.
    pub progress: bool,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("targets_base", &self.targets_base.as_str())
            .field("cache", &self.cache)
            .finish()
    }
}

/// How long a download may go without a single byte before it is given up.
pub const IDLE: Duration = Duration::from_secs(60);

/// An agent for update and console downloads: the system's CA roots, a connection
/// timeout, no overall timeout (a large download over a slow link takes as long as it
/// takes) but one per read ([`IDLE`]: a server that stops sending is given up),
/// statuses left to us.
pub fn agent() -> ureq::Agent {
    agent_with_idle(IDLE)
}

fn agent_with_idle(idle: Duration) -> ureq::Agent {
    let roots = corral_config::datasource::http::roots_from(Path::new(
        corral_config::datasource::http::CA_BUNDLE,
    ))
    .unwrap_or(ureq::tls::RootCerts::WebPki);
    // Not `timeout_recv_body`: in ureq 3 that bounds the whole body, which cut every
    // download longer than a minute.
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(idle))
        .timeout_per_read(Some(idle))
        .http_status_as_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .into()
}

impl HttpTransport {
    /// Where a target from `url` is cached.
    pub fn cached(&self, url: &Url) -> Option<PathBuf> {
        let rest = url.as_str().strip_prefix(self.targets_base.as_str())?;
        (!rest.is_empty() && !rest.contains('/') && !rest.starts_with('.'))
            .then(|| self.cache.join(rest))
    }

    fn metadata(&self, url: &Url) -> Result<TransportStream, TransportError> {
        let response = self
            .agent
            .get(url.as_str())
            .call()
            .map_err(|e| other(url, e))?;
        match response.status().as_u16() {
            200 => {}
            404 | 403 => {
                return Err(TransportError::new(
                    TransportErrorKind::FileNotFound,
                    url.as_str(),
                ))
            }
            s => return Err(other(url, format!("the server answered {s}"))),
        }
        let mut body = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(MAX_METADATA)
            .read_to_end(&mut body)
            .map_err(|e| other(url, e))?;
        Ok(Box::pin(stream::iter([Ok(Bytes::from(body))])))
    }

    /// Downloads `url` into `path`, resuming a `.part` file.
    fn download(&self, url: &Url, path: &Path) -> Result<(), TransportError> {
        let part = path.with_file_name(format!(
            "{}.part",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        fs::create_dir_all(&self.cache).map_err(|e| other(url, e))?;
        let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let mut request = self.agent.get(url.as_str());
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request.call().map_err(|e| other(url, e))?;
        let status = response.status().as_u16();
        let (append, total) = match status {
            206 => (true, None),
            200 => (false, None),
            // The part is already whole.
            416 if have > 0 => {
                fs::rename(&part, path).map_err(|e| other(url, e))?;
                return Ok(());
            }
            404 => {
                return Err(TransportError::new(
                    TransportErrorKind::FileNotFound,
                    url.as_str(),
                ))
            }
            s => return Err(other(url, format!("the server answered {s}"))),
        };
        let length = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let start = if append { have } else { 0 };
        let total = total.or(length.map(|l| l + start));
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(&part)
            .map_err(|e| other(url, e))?;
        let bar = if self.progress {
            crate::progress::bytes_bar(total.unwrap_or(0), &display_name(url))
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_position(start);
        if append {
            log::info!("resuming {} at {} MB", url, start >> 20);
        }
        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = reader.read(&mut buf).map_err(|e| other(url, e))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(|e| other(url, e))?;
            bar.inc(n as u64);
        }
        file.sync_all().map_err(|e| other(url, e))?;
        bar.finish_and_clear();
        let got = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if let Some(total) = total {
            if got < total {
                return Err(other(
                    url,
                    format!("the download stopped at {got} of {total} bytes; run the command again to resume"),
                ));
            }
        }
        fs::rename(&part, path).map_err(|e| other(url, e))?;
        Ok(())
    }
}

fn display_name(url: &Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    // `<sha256>.<name>`: the name is what a person recognises.
    last.split_once('.').map_or(last, |(_, n)| n).to_string()
}

#[tough::async_trait]
impl Transport for HttpTransport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TransportError::new(
                TransportErrorKind::UnsupportedUrlScheme,
                url.as_str(),
            ));
        }
        let Some(path) = self.cached(&url) else {
            return self.metadata(&url);
        };
        if !path.exists() {
            self.download(&url, &path)?;
        }
        let size = fs::metadata(&path).map_err(|e| other(&url, e))?.len();
        blob_stream(
            &Blob {
                file: path,
                offset: 0,
                size,
            },
            &url,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    /// Serves one request: headers, then `chunks` of 1 KiB with `gap` between them,
    /// then (if `stall`) waits that long before the last one.
    fn slow_server(chunks: usize, gap: Duration, stall: Option<Duration>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut request = [0u8; 1024];
            let _ = conn.read(&mut request);
            let total = (chunks + usize::from(stall.is_some())) * 1024;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
            );
            for _ in 0..chunks {
                let _ = conn.write_all(&[7u8; 1024]);
                let _ = conn.flush();
                std::thread::sleep(gap);
            }
            if let Some(stall) = stall {
                std::thread::sleep(stall);
                let _ = conn.write_all(&[7u8; 1024]);
            }
        });
        format!("http://{addr}/big")
    }

    fn download(agent: &ureq::Agent, url: &str) -> std::io::Result<usize> {
        let response = agent.get(url).call().map_err(std::io::Error::other)?;
        let mut body = Vec::new();
        response.into_body().into_reader().read_to_end(&mut body)?;
        Ok(body.len())
    }

    #[test]
    fn a_download_longer_than_the_idle_limit_goes_on_while_bytes_arrive() {
        let idle = Duration::from_millis(700);
        let url = slow_server(12, Duration::from_millis(200), None);
        let started = Instant::now();
        let got = download(&agent_with_idle(idle), &url).expect("the whole body");
        assert_eq!(got, 12 * 1024);
        assert!(started.elapsed() > 2 * idle, "{:?}", started.elapsed());
    }

    #[test]
    fn a_server_that_stops_sending_is_given_up() {
        let idle = Duration::from_millis(500);
        let url = slow_server(2, Duration::from_millis(10), Some(Duration::from_secs(5)));
        let started = Instant::now();
        let err = download(&agent_with_idle(idle), &url).expect_err("stalled");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "given up at {:?}: {err}",
            started.elapsed()
        );
    }
}
