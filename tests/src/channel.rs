//! A serial port on a unix socket: a thread reads everything into a buffer (and a log
//! file, line-timestamped from the machine's start), answers prompts it was told to
//! answer the moment they appear, and the test writes to it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Shared {
    text: String,
    /// (seconds since the machine started, line) for every complete line.
    lines: Vec<(f64, String)>,
    partial: String,
    closed: bool,
}

/// One serial port.
pub struct Channel {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    writer: Mutex<UnixStream>,
}

impl Channel {
    /// Starts reading from `stream`. `answers` are (prompt, reply): the first time
    /// `prompt` shows up, `reply` is written back at once (boot menus wait one second).
    pub fn start(
        stream: UnixStream,
        log: Option<&Path>,
        started: Instant,
        answers: Vec<(String, String)>,
    ) -> std::io::Result<Channel> {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let mut reader = stream.try_clone()?;
        let mut answer_writer = stream.try_clone()?;
        let mut log = match log {
            Some(p) => Some(std::fs::File::create(p)?),
            None => None,
        };
        let s = Arc::clone(&shared);
        thread::spawn(move || {
            let mut pending = answers;
            let mut buf = [0u8; 4096];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = String::from_utf8_lossy(&buf[..n]).replace('\r', "");
                if let Some(f) = log.as_mut() {
                    let _ = f.write_all(chunk.as_bytes());
                }
                let (lock, cvar) = &*s;
                let Ok(mut sh) = lock.lock() else { break };
                sh.text.push_str(&chunk);
                sh.partial.push_str(&chunk);
                let at = started.elapsed().as_secs_f64();
                while let Some(i) = sh.partial.find('\n') {
                    let line: String = sh.partial.drain(..=i).collect();
                    sh.lines.push((at, line.trim_end().to_string()));
                }
                let text_tail_start = sh.text.len().saturating_sub(chunk.len() + 256);
                let tail = sh.text[floor_char(&sh.text, text_tail_start)..].to_string();
                pending.retain(|(prompt, reply)| {
                    if tail.contains(prompt.as_str()) {
                        let _ = answer_writer.write_all(reply.as_bytes());
                        false
                    } else {
                        true
                    }
                });
                cvar.notify_all();
            }
            let (lock, cvar) = &*s;
            if let Ok(mut sh) = lock.lock() {
                sh.closed = true;
            }
            cvar.notify_all();
        });
        Ok(Channel {
            shared,
            writer: Mutex::new(stream),
        })
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.shared
            .0
            .lock()
            .map(|s| s.text.clone())
            .unwrap_or_default()
    }

    /// Every complete line so far, with its time.
    pub fn lines(&self) -> Vec<(f64, String)> {
        self.shared
            .0
            .lock()
            .map(|s| s.lines.clone())
            .unwrap_or_default()
    }

    /// Length of the text so far, to search only what comes after.
    pub fn mark(&self) -> usize {
        self.shared.0.lock().map(|s| s.text.len()).unwrap_or(0)
    }

    /// Waits until `pred` finds something in the text after `from`; `None` on timeout or
    /// when the port closed (the machine stopped).
    pub fn wait<T>(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut sh = lock.lock().ok()?;
        loop {
            let start = floor_char(&sh.text, from.min(sh.text.len()));
            if let Some(found) = pred(&sh.text[start..]) {
                return Some(found);
            }
            let now = Instant::now();
            if sh.closed || now >= deadline {
                return None;
            }
            sh = cvar.wait_timeout(sh, deadline - now).ok()?.0;
        }
    }

    pub fn send(&self, data: &str) -> std::io::Result<()> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| std::io::Error::other("writer lock poisoned"))?;
        w.write_all(data.as_bytes())
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
