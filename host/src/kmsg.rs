//! A `log` backend that writes to the kernel log (/dev/kmsg), so early messages from PID 1
//! and the manager are on the console and in `dmesg` before any syslog runs. When
//! /dev/kmsg cannot be opened (before /dev is mounted) lines go to stderr, the console.

use log::{Level, LevelFilter, Metadata, Record};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

/// The kernel log backend, tagged with the program's name.
pub struct KmsgLogger {
    tag: &'static str,
    level: LevelFilter,
    file: Mutex<Option<File>>,
}

/// Kernel log priority for a `log` level. Info is NOTICE (5), not INFO (6), so that Corral's
/// progress shows on the console while the kernel's own chatter at INFO can be hidden
/// with `loglevel=6`.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 5,
        Level::Debug | Level::Trace => 7,
    }
}

/// One kmsg line: `<priority>tag: message`, with newlines folded so one record stays one
/// kernel log entry.
pub fn format_line(tag: &str, level: Level, message: &str) -> String {
    format!(
        "<{}>{tag}: {}\n",
        priority(level),
        message.replace('\n', " | ")
    )
}

impl KmsgLogger {
    /// Installs the logger as the global `log` backend. Calling it twice is harmless.
    pub fn init(tag: &'static str, level: LevelFilter) {
        let logger = Box::new(KmsgLogger {
            tag,
            level,
            file: Mutex::new(None),
        });
        if log::set_boxed_logger(logger).is_ok() {
            log::set_max_level(level);
        }
    }
}

impl log::Log for KmsgLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(self.tag, record.level(), &record.args().to_string());
        let Ok(mut file) = self.file.lock() else {
            return;
        };
        if file.is_none() {
            *file = OpenOptions::new().write(true).open("/dev/kmsg").ok();
        }
        let written = file
            .as_mut()
            .map(|f| f.write_all(line.as_bytes()).is_ok())
            .unwrap_or(false);
        if !written {
            // Strip the "<N>" priority for a human reading the console.
            let text = line.split_once('>').map(|(_, rest)| rest).unwrap_or(&line);
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_priority_and_tag_and_stay_on_one_line() {
        assert_eq!(
            format_line("corral-init", Level::Info, "root switched\nnext"),
            "<5>corral-init: root switched | next\n"
        );
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Debug), 7);
    }
}
