//! Every problem in a piece of user-data, not just the first: the parser stops at the
//! first error, so after a failed full read each top-level entry (and each entry of the
//! `corral:`/`rancher:` section) is read again on its own. The other lines are blanked,
//! not removed, so every error keeps its own line and column.

use crate::userdata::{self, UserData};
use crate::ConfigError;

/// What `corral config validate` reports for one input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks user-data as a datasource would hand it over.
pub fn user_data(origin: &str, bytes: &[u8]) -> Report {
    match userdata::parse(origin, bytes) {
        Ok(UserData::CloudConfig { warnings, .. }) => Report {
            errors: Vec::new(),
            warnings,
        },
        Ok(_) => Report::default(),
        Err(first) => {
            let text = std::str::from_utf8(bytes).ok();
            let is_cloud_config = text.is_some_and(|t| t.starts_with("#cloud-config"));
            let errors = match (&first, text) {
                // An error with a place (a syntax or type error) may hide others in
                // other entries; one without (a document that expands past the bound,
                // several documents) is about the whole and would read as another
                // error entry by entry (an alias's anchor in a different entry).
                (ConfigError::Yaml { at, .. }, Some(t)) if is_cloud_config && !at.is_empty() => {
                    let mut all = each_entry(origin, t);
                    if all.is_empty() {
                        all.push(first.to_string());
                    }
                    all
                }
                _ => vec![first.to_string()],
            };
            Report {
                errors,
                warnings: Vec::new(),
            }
        }
    }
}

/// Checks a file Corral keeps (OEM, `corral config set`, `-i FILE`): the same as
/// user-data, with the `#cloud-config` line optional.
pub fn layer(origin: &str, bytes: &[u8]) -> Report {
    let doc = as_user_data(bytes);
    let mut r = user_data(origin, &doc);
    if let std::borrow::Cow::Owned(_) = doc {
        for e in &mut r.errors {
            *e = shift_line(e);
        }
    }
    r
}

/// A layer as user-data: with `#cloud-config` put first when it starts with no form's
/// header of its own (errors then count one line too many: [`shift_line`]).
pub fn as_user_data(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let headed = bytes.starts_with(b"#cloud-config")
        || bytes.starts_with(b"#!")
        || bytes.starts_with(b"#compose")
        || bytes.starts_with(&[0x1f, 0x8b]);
    if headed {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut with_header = b"#cloud-config\n".to_vec();
    with_header.extend_from_slice(bytes);
    std::borrow::Cow::Owned(with_header)
}

/// `... line N column C ...` with N one less (the added header line taken back out).
pub(crate) fn shift_line(message: &str) -> String {
    let Some(at) = message.find("line ") else {
        return message.to_string();
    };
    let rest = &message[at + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<usize>() {
        Ok(n) if n > 1 => format!("{}line {}{}", &message[..at], n - 1, &rest[digits.len()..]),
        _ => message.to_string(),
    }
}

/// Line ranges of the entries at `indent` within `lines[range]`: an entry starts at a
/// line with exactly that indentation that is not a comment.
fn entries(lines: &[&str], from: usize, to: usize, indent: usize) -> Vec<(usize, usize)> {
    let starts: Vec<usize> = (from..to)
        .filter(|&i| {
            let l = lines[i];
            let trimmed = l.trim_start();
            l.len() - trimmed.len() == indent && !trimmed.is_empty() && !trimmed.starts_with('#')
        })
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| (s, starts.get(n + 1).copied().unwrap_or(to)))
        .collect()
}

/// The text with only `keep` lines (by index) left, the others blank.
fn only(lines: &[&str], keep: impl Fn(usize) -> bool) -> String {
    let mut out = String::from("#cloud-config\n");
    for (i, l) in lines.iter().enumerate().skip(1) {
        if keep(i) {
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

fn each_entry(origin: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut errors = Vec::new();
    let check = |doc: String, errors: &mut Vec<String>| {
        if let Err(e) = userdata::parse(origin, doc.as_bytes()) {
            let e = e.to_string();
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    };
    for (start, end) in entries(&lines, 1, lines.len(), 0) {
        let head = lines[start].trim_end();
        let section = head == "corral:" || head == "rancher:";
        let inner_indent = lines[start + 1..end]
            .iter()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.len() - l.trim_start().len());
        match (section, inner_indent) {
            (true, Some(indent)) if indent > 0 => {
                for (s, e) in entries(&lines, start + 1, end, indent) {
                    check(
                        only(&lines, |i| i == start || (s..e).contains(&i)),
                        &mut errors,
                    );
                }
            }
            _ => check(only(&lines, |i| (start..end).contains(&i)), &mut errors),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_entry_is_reported_at_its_own_line() {
        let text = "#cloud-config\nhostname: -bad-\nssh_authorized_keys: [ok]\nwrite_files:\n  - path: relative\n\
                    rancher:\n  # a comment\n  modules: ['../x']\n  network:\n    interfaces:\n      eth0: {mtu: 5}\n  console: default\n\
                    runcmd: [{a: 1}]\n";
        let r = user_data("u", text.as_bytes());
        assert_eq!(
            r.errors,
            [
                "u: line 2 column 11: hostname: \"-bad-\" is not a valid host name; use letters, digits and `-`, in labels of up to 63 separated by `.`, at most 64 in all",
                "u: line 5 column 11: write_files[0].path: \"relative\" is not an absolute path; write it from /, without `..`",
                "u: line 8 column 13: rancher.modules[0]: \"../x\" is not a module name; write the name as modprobe takes it, like br_netfilter",
                "u: line 13 column 9: runcmd: a command is a line of shell (`echo hi`) or a list of arguments (`[echo, hi]`)",
            ]
        );
        // A network interface that does not read is left unconfigured, not a reason
        // to refuse the file (RancherOS's netconf went on without it).
        let only_eth0 = "#cloud-config\nrancher:\n  network:\n    interfaces:\n      eth0: {mtu: 5}\n      eth1: {dhcp: true}\n";
        let r = user_data("u", only_eth0.as_bytes());
        assert_eq!(r.errors, Vec::<String>::new());
        assert_eq!(
            r.warnings,
            ["u: network.interfaces.eth0: mtu 5 is out of range; use 68 to 65535 (1500 on most networks); the interface it names is left unconfigured"]
        );
    }

    #[test]
    fn a_file_without_the_header_keeps_its_line_numbers() {
        let r = layer("cloud-config.yml", b"hostname: ok\ncorral:\n  modules: 3\n");
        assert_eq!(r.errors.len(), 1);
        assert!(
            r.errors[0].starts_with("cloud-config.yml: line 3 column 12: corral.modules"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn a_document_past_the_expansion_bound_is_reported_as_such() {
        let items = vec!["x"; 10_000].join(", ");
        let aliases = vec!["*a"; 10_000].join(", ");
        let text = format!("#cloud-config\nrancher:\n  a: &a [{items}]\n  b: [{aliases}]\n");
        let r = user_data("u", text.as_bytes());
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(
            r.errors[0].contains("expands to more than 1000000 values"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn syntax_errors_and_other_forms_report_once() {
        let r = user_data("u", b"#cloud-config\nhostname: [a\n");
        assert_eq!(r.errors.len(), 1);
        assert!(
            r.errors[0].starts_with("u: line 3 column 1"),
            "{:?}",
            r.errors
        );
        assert_eq!(user_data("u", b"#!/bin/sh\n"), Report::default());
        let r = user_data("u", b"#cloud-config\nfoo: 1\n");
        assert_eq!(r.warnings, ["u: `foo` is not supported and is ignored"]);
        assert!(r.errors.is_empty());
    }

    /// The fuzz targets' property on stable, in every test run: mutations of real
    /// inputs (bytes flipped, cut, repeated) never make the parsers panic.
    #[test]
    fn mutated_inputs_never_panic() {
        let seeds: [&[u8]; 4] = [
            include_bytes!("../examples/full.yml"),
            b"#cloud-config\nhostname: a\nrancher: {network: {interfaces: {eth0: {dhcp: true}}}}\n",
            b"#!/bin/sh\necho hi\n",
            b"corral.ssh_authorized_keys=[a] \"rancher.network.dns.nameservers=[1.1.1.1]\" corral.modules=a,b",
        ];
        const SPECIAL: &[u8] = b"[{:&*!-'\"\n\t#";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for seed in seeds {
            for _ in 0..300 {
                let mut data = seed.to_vec();
                for _ in 0..(next() % 8 + 1) {
                    let at = (next() as usize) % data.len().max(1);
                    match next() % 4 {
                        0 if !data.is_empty() => data[at] = next() as u8,
                        1 => data.truncate(at),
                        2 => data
                            .insert(at.min(data.len()), SPECIAL[next() as usize % SPECIAL.len()]),
                        _ => {
                            let piece: Vec<u8> = data[at.min(data.len())..]
                                .iter()
                                .take(40)
                                .copied()
                                .collect();
                            data.extend(piece);
                        }
                    }
                }
                let _ = userdata::parse("m", &data);
                let _ = user_data("m", &data);
                let _ = layer("m", &data);
                let _ = crate::cmdline::parse(&String::from_utf8_lossy(&data));
            }
        }
    }
}
